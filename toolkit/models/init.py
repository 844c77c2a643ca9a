"""Weight initialisation schemes a lab model can be trained from.

Keras initialises Conv2D and Dense kernels with Glorot-uniform and biases with zeros;
PyTorch, where several of the lab reports were trained, initialises both ``nn.Conv2d``
and ``nn.Linear`` with ``kaiming_uniform_(a=sqrt(5))`` for the weight, which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same range for the bias. On a 3x3 conv of 64
in and 32 out channels that is a bound of 0.042 against Glorot's 0.083: a different
starting point, and one of the differences left between a Keras run and the report's.

``edgeproof train --init pytorch`` re-draws every Conv2D / Dense weight that way after the
model is built (seeded, so a run is reproducible), leaving everything else alone.
"""

from __future__ import annotations

import numpy as np

from edgeproof.errors import UsageError
from edgeproof.keras_loader import is_nested_model

INITS = ("keras", "pytorch")


def pytorch_bound(kernel_shape: tuple[int, ...]) -> float:
    """PyTorch's default bound for a Conv2D / Dense kernel of this (Keras) shape.

    Keras kernels are (kh, kw, in, out) for Conv2D and (in, out) for Dense, so fan_in is
    the product of every dimension but the last.

    Example:
        >>> round(pytorch_bound((3, 3, 64, 32)), 4)
        0.0417
        >>> pytorch_bound((256, 10))
        0.0625
    """
    fan_in = int(np.prod(kernel_shape[:-1]))
    return 1.0 / float(np.sqrt(fan_in))


def apply_init(model, scheme: str, seed: int = 0) -> list[str]:
    """Re-initialise ``model``'s Conv2D and Dense layers with ``scheme``; returns their names.

    ``keras`` leaves the model as built. Layers nested in sub-models are reached too.

    Raises:
        UsageError: an unknown scheme.

    Example:
        >>> apply_init(create_model("small_cnn", 10, (32, 32, 1)), "pytorch")  # doctest: +SKIP
        ['conv2d', 'conv2d_1', 'dense', 'dense_1']
    """
    if scheme not in INITS:
        raise UsageError(f"--init {scheme!r} is not one of {', '.join(INITS)}.")
    if scheme == "keras":
        return []
    rng = np.random.default_rng(seed)
    done = []
    for layer in _leaf_layers(model):
        if type(layer).__name__ not in ("Conv2D", "Dense") or not layer.weights:
            continue
        bound = pytorch_bound(tuple(layer.kernel.shape))
        # Variables stay float32 under a mixed precision policy (only compute is bf16).
        targets = [layer.kernel] + ([layer.bias] if getattr(layer, "use_bias", False) else [])
        for var in targets:
            var.assign(rng.uniform(-bound, bound, tuple(var.shape)).astype(np.float32))
        done.append(layer.name)
    return done


def _leaf_layers(model):
    for layer in model.layers:
        if is_nested_model(layer):
            yield from _leaf_layers(layer)
        else:
            yield layer
