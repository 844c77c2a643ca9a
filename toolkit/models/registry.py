"""Model registry: each model is a small registered builder (the timm pattern).

Example:
    >>> from toolkit.models import create_model, list_models
    >>> "flowers_cnn" in list_models()
    True
    >>> model = create_model("small_cnn", num_classes=10, input_shape=(32, 32, 1))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from toolkit.errors import ModelError, UsageError, first_line
from toolkit.validation import check_choice, check_int


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, a one-line description and sensible defaults."""

    name: str
    builder: Callable
    description: str
    default_input_shape: tuple[int, int, int]
    family: str = "lab"
    min_size: int = 8


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, description: str, default_input_shape=(32, 32, 1),
                   family: str = "lab", min_size: int = 8):
    """Decorator registering ``builder(num_classes, input_shape, **kw) -> keras.Model``."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, fn, description, tuple(default_input_shape), family,
                                    min_size)
        return fn

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    check_choice("model", name, list_models(), "create_model")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int, input_shape=None, **kwargs):
    """Build the registered model ``name`` for ``num_classes`` and ``input_shape`` (H, W, C).

    Raises:
        UsageError: unknown name (lists valid ones), bad class count, or an input smaller
            than the model allows.
    """
    spec = model_spec(name)
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
