"""The MNIST / CIFAR-10 lab series (models 1-7), PraisyNet and the dropout variants.

Every layer is spelled out as in the lab reports: Conv2D with valid padding and ReLU,
stride 1; MaxPooling2D with the report's pool size and stride; a float32 softmax head.
Models 8-10 of the reports are ``lab_model7`` trained with augmentation presets
(``--augment lab8`` / ``lab9``, see ``toolkit.augment``), not separate architectures.

Example:
    >>> from edgeproof.toolkit.models import create_model
    >>> m = create_model("lab_model3", 10, (28, 28, 1))  # doctest: +SKIP
"""

from __future__ import annotations

from edgeproof.toolkit.models.model_table import register_model
from edgeproof.tfcompat import keras

# A layer plan is a tuple of steps: ("conv", filters, kernel), ("pool", size, stride),
# ("bn",), ("dropout", rate), ("relu",), ("flatten",), ("dense", units).
PLANS: dict[str, tuple] = {
    "lab_model1": (("conv", 32, 3), ("flatten",)),
    "lab_model2": (("conv", 32, 3), ("conv", 64, 3), ("pool", 2, 1), ("conv", 128, 3),
                   ("flatten",)),
    "lab_model3": (("conv", 32, 5), ("conv", 64, 5), ("bn",), ("pool", 2, 1), ("conv", 128, 5),
                   ("flatten",)),
    "lab_model4": (("conv", 32, 5), ("conv", 64, 5), ("bn",), ("pool", 2, 2), ("conv", 128, 5),
                   ("flatten",)),
    "lab_model5": (("conv", 64, 5), ("conv", 128, 5), ("bn",), ("pool", 2, 2), ("conv", 256, 5),
                   ("flatten",)),
    "lab_model6": (("conv", 64, 5), ("pool", 2, 2), ("bn",), ("conv", 128, 5), ("pool", 2, 2),
                   ("bn",), ("flatten",), ("dense", 128)),
    "lab_model7": (("conv", 64, 5), ("conv", 64, 5), ("pool", 2, 2), ("bn",), ("conv", 128, 5),
                   ("conv", 128, 5), ("pool", 2, 2), ("bn",), ("flatten",), ("dense", 128)),
}
PLANS["praisynet"] = PLANS["lab_model7"]  # the PyTorch port of model 7, same layout
_DROP_BLOCK = (("conv", 64, 3, None), ("conv", 32, 3, None), ("dropout", 0.5), ("relu",),
               ("pool", 2, 1))
PLANS["lab_dropout_model3"] = _DROP_BLOCK + (("conv", 16, 3), ("flatten",))
PLANS["lab_dropout_model4"] = _DROP_BLOCK + (("conv", 16, 3), ("flatten",), ("dense", 128))
PLANS["lab_dropout_model5"] = _DROP_BLOCK * 2 + (("conv", 16, 3), ("flatten",), ("dense", 128),
                                                 ("dense", 256))

# Smallest input each plan builds at (valid convs shrink the map; probed at registration).
_MIN_SIZE = {"lab_model1": 4, "lab_model2": 8, "lab_model3": 14, "lab_model4": 18,
             "lab_model5": 18, "lab_model6": 16, "lab_model7": 28, "praisynet": 28,
             "lab_dropout_model3": 8, "lab_dropout_model4": 8, "lab_dropout_model5": 13}

_DESCRIPTIONS = {
    "lab_model1": "lab series 1: Conv32,3-Flatten-Dense (MNIST 91.96%, CIFAR-10 33.35%)",
    "lab_model2": "lab series 2: Conv32,3-Conv64,3-MaxPool2,s1-Conv128,3-Flatten-Dense",
    "lab_model3": "lab series 3: Conv32,5-Conv64,5-BN-MaxPool2,s1-Conv128,5-Flatten-Dense",
    "lab_model4": "lab series 4: lab_model3 with MaxPool stride 2",
    "lab_model5": "lab series 5: Conv64,5-Conv128,5-BN-MaxPool2,s2-Conv256,5-Flatten-Dense",
    "lab_model6": "lab series 6: Conv64,5-Pool-BN-Conv128,5-Pool-BN-Flatten-Dense128-Dense",
    "lab_model7": "lab series 7 (8-10 = with --augment lab8/lab9): 2x(Conv,5-Conv,5-Pool-BN)-"
                  "Dense128",
    "praisynet": "PraisyNet (PyTorch port): 2x(Conv,5-Conv,5-MaxPool2,s2-BN)-Dense128-Dense",
    "lab_dropout_model3": "dropout variant 3: Conv64,3-Conv32,3-Dropout-ReLU-MaxPool2,s1-"
                          "Conv16,3-Flatten-Dense",
    "lab_dropout_model4": "dropout variant 4: lab_dropout_model3 + Dense128",
    "lab_dropout_model5": "dropout variant 5: 2x(Conv64,3-Conv32,3-Dropout-ReLU-MaxPool2,s1)-"
                          "Conv16,3-Dense128-Dense256-Dense",
}


def _apply(k, step, x, i):
    kind = step[0]
    if kind == "conv":
        # A 4th element of None means "no activation here": the dropout variants put
        # ReLU after Dropout, as their framework original did.
        act = step[3] if len(step) > 3 else "relu"
        return k.layers.Conv2D(step[1], step[2], activation=act, name=f"conv{i}")(x)
    if kind == "pool":
        return k.layers.MaxPooling2D(step[1], strides=step[2], name=f"pool{i}")(x)
    if kind == "bn":
        return k.layers.BatchNormalization(name=f"bn{i}")(x)
    if kind == "dropout":
        return k.layers.Dropout(step[1], name=f"dropout{i}")(x)
    if kind == "relu":
        return k.layers.ReLU(name=f"relu{i}")(x)
    if kind == "flatten":
        return k.layers.Flatten(name="flatten")(x)
    if kind == "dense":
        return k.layers.Dense(step[1], activation="relu", name=f"dense{i}")(x)
    raise ValueError(f"unknown layer step {step}")


def build_plan(name: str, num_classes: int, input_shape):
    """Build the Keras model of layer plan ``PLANS[name]``.

    Args:
        name: a key of ``PLANS``.
        num_classes: width of the softmax head.
        input_shape: (H, W, C).

    Example:
        >>> build_plan("lab_model1", 10, (28, 28, 1)).count_params()  # doctest: +SKIP
        216650
    """
    k = keras()
    inp = k.Input(input_shape, name="image")
    x = inp
    for i, step in enumerate(PLANS[name]):
        x = _apply(k, step, x, i)
    out = k.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return k.Model(inp, out, name=name)


def _register(name: str) -> None:
    def builder(num_classes, input_shape):
        return build_plan(name, num_classes, input_shape)

    builder.__name__ = name
    register_model(name, description=_DESCRIPTIONS[name], default_input_shape=(28, 28, 1),
                   family="lab_series", min_size=_MIN_SIZE[name])(builder)


for _name in PLANS:
    _register(_name)
