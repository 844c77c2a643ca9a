"""Model registry: each model is a small registered builder (the timm pattern).

Example:
    >>> from edgeproof.toolkit.models import create_model, list_models
    >>> "flowers_cnn" in list_models()
    True
    >>> model = create_model("small_cnn", num_classes=10, input_shape=(32, 32, 1))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from edgeproof.errors import ModelError, UsageError, first_line
from edgeproof.registry import Registry
from edgeproof.validation import check_int


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, a one-line description and sensible defaults."""

    name: str
    builder: Callable
    description: str
    default_input_shape: tuple[int, int, int]
    family: str = "lab"
    min_size: int = 8


    @property
    def options(self) -> list[str]:
        """The builder's keyword options beyond ``num_classes`` and ``input_shape``."""
        params = inspect.signature(self.builder).parameters
        return [n for n in params if n not in ("num_classes", "input_shape")]


MODELS: Registry[ModelSpec] = Registry("model", "create_model")


def register_model(name: str, *, description: str, default_input_shape=(32, 32, 1),
                   family: str = "lab", min_size: int = 8):
    """Decorator registering ``builder(num_classes, input_shape, **kw) -> keras.Model``."""

    def deco(fn):
        MODELS.add(name, ModelSpec(name, fn, description, tuple(default_input_shape), family,
                                   min_size))
        return fn

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return MODELS.names()


def model_spec(name: str) -> ModelSpec:
    """The registered model ``name``; an unknown name lists the valid ones.

    Example:
        >>> model_spec("small_cnn").default_input_shape
        (32, 32, 1)
    """
    return MODELS.get(name)


def create_model(name: str, num_classes: int, input_shape=None, **kwargs):
    """Build the registered model ``name`` for ``num_classes`` and ``input_shape`` (H, W, C).

    Raises:
        UsageError: unknown name (lists valid ones), an option the builder does not take
            (lists the ones it does), bad class count, or an input smaller than the model
            allows.

    Example:
        >>> create_model("small_cnn", 10, (32, 32, 1), dropout=0.5)
        Traceback (most recent call last):
        ...
        edgeproof.errors.UsageError: Model small_cnn does not take option(s) dropout. Valid options: none.
    """
    spec = model_spec(name)
    unknown = sorted(set(kwargs) - set(spec.options))
    if unknown:
        raise UsageError(f"Model {name} does not take option(s) {', '.join(unknown)}. "
                         f"Valid options: {', '.join(spec.options) or 'none'}.")
    check_int("num_classes", num_classes, "create_model", low=2)
    shape = tuple(int(d) for d in (input_shape or spec.default_input_shape))
    if len(shape) != 3:
        raise UsageError(f"input_shape must be (height, width, channels); got {shape}.")
    if min(shape[:2]) < spec.min_size:
        raise UsageError(f"{name} needs images of at least {spec.min_size}x{spec.min_size} px; "
                         f"got {shape[0]}x{shape[1]}. Pass a larger --image-size.")
    try:
        return spec.builder(num_classes=num_classes, input_shape=shape, **kwargs)
    except ValueError as e:
        # Keras raises ValueError when a layer would shrink the feature map below 1 px.
        raise ModelError(f"Cannot build {name} at input {shape}: {first_line(e)}. "
                         "Try a larger --image-size.") from None
