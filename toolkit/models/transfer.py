"""Transfer-learning models on InceptionV3 and ResNet50 bases (``keras.applications``).

Four recipes from the lab reports, each registered for both bases where the reports
used it:

- ``*_features``: feature extraction. The base runs once over the data, its features
  are cached and only the head (Flatten-Dense256-Dropout0.5-Dense) is trained
  (``toolkit.train`` sees ``model.edgeproof_transfer["mode"] == "features"``).
- ``*_frozen``: the frozen base inside the model, trained with augmentation
  (``--augment chollet``); head Flatten-Dense256-Dense.
- ``*_finetune``: the head is trained with the base frozen, then the top N base layers
  (default 50: the flowers report's last 50 of InceptionV3's 311) are unfrozen and
  trained at a low learning rate; BatchNorm momentum 0.9.
- ``resnet50_full``: every layer trainable from the start (the CIFAR-10 report).

``weights`` is ``"imagenet"`` (Keras cache ``~/.keras/models`` or a download),
``"none"`` (random init) or the path of a base-weights file. Pixels arrive as
``uint8 * 1/255`` like every edgeproof model; a first layer maps them to what the base
was trained on, using built-in layers only so the model exports without custom code.

Example:
    >>> from edgeproof.toolkit.models import create_model
    >>> m = create_model("inception_v3_frozen", 5, (150, 150, 3), weights="none")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError, first_line
from edgeproof.toolkit.models.model_table import register_model
from edgeproof.tfcompat import keras

BASES = {
    # name: (keras.applications attribute, min input side, notop weights file)
    "inception_v3": ("InceptionV3", 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50": ("ResNet50", 32, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` looks for application weights."""
    return Path.home() / ".keras" / "models"


def _imagenet_input(k, base: str, channels: int):
    """[0, 1] pixels -> the base's expected input, as one built-in layer."""
    if base == "inception_v3":  # "tf" mode: [-1, 1]
        return k.layers.Rescaling(2.0, offset=-1.0, name="to_base_range")
    # ResNet50 is "caffe" mode: RGB->BGR, 0-255, minus the ImageNet mean. A fixed 1x1
    # convolution does all three and exports everywhere (no Lambda, no custom layer).
    w = np.zeros((1, 1, channels, channels), np.float32)
    for c in range(channels):
        w[0, 0, c, channels - 1 - c] = 255.0
    b = np.asarray(_CAFFE_MEAN_BGR[:channels], np.float32) * -1.0
    return k.layers.Conv2D(channels, 1, name="to_base_range", trainable=False,
                           kernel_initializer=k.initializers.Constant(w),
                           bias_initializer=k.initializers.Constant(b))


def _resolve_weights(base: str, weights):
    w = "none" if weights is None else str(weights)
    if w.lower() == "none":
        return None
    if w.lower() == "imagenet":
        fname = BASES[base][2]
        if not (keras_cache_dir() / fname).exists():
            _check_online(base, fname)
        return "imagenet"
    if not Path(w).is_file():
        raise ModelError(f"Weights file not found: {w}. Pass --weights imagenet, none or the "
                         f"path of a {base} notop weights file (.h5).")
    return w


def _check_online(base: str, fname: str) -> None:
    import socket

    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
    except OSError:
        raise ModelError(
            f"ImageNet weights for {base} are not cached and this machine is offline: download "
            f"{WEIGHTS_URL}{fname} into {keras_cache_dir()}/ (or pass --weights none|FILE)."
        ) from None


def build_base(base: str, input_shape, weights="imagenet"):
    """The convolutional base ``base`` (no top) for ``input_shape``.

    Args:
        base: ``inception_v3`` or ``resnet50``.
        input_shape: (H, W, C); ImageNet weights need C == 3.
        weights: ``imagenet``, ``none`` or a weights file.

    Raises:
        ModelError: weights unavailable (says where to put them) or unusable.

    Example:
        >>> build_base("resnet50", (32, 32, 3), "none").name  # doctest: +SKIP
        'resnet50'
    """
    k = keras()
    resolved = _resolve_weights(base, weights)
    if resolved is not None and input_shape[-1] != 3:
        raise ModelError(f"{base} with pre-trained weights needs RGB input (3 channels); got "
                         f"{input_shape[-1]}. Load the dataset as rgb or pass --weights none.")
    try:
        fn = getattr(k.applications, BASES[base][0])
        return fn(include_top=False, weights=resolved, input_shape=tuple(input_shape))
    except (OSError, ValueError) as e:
        first = first_line(e, 200)
        raise ModelError(f"Cannot load {base} weights {weights!r} ({first}); pass --weights none "
                         f"or put {BASES[base][2]} into {keras_cache_dir()}/.") from None


def _head(k, num_classes: int, dropout: float, name: str = "head"):
    layers = [k.layers.Flatten(), k.layers.Dense(256, activation="relu")]
    if dropout:
        layers.append(k.layers.Dropout(dropout))
    layers.append(k.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 name="probs"))
    return k.Sequential(layers, name=name)


def _assemble(base_name, mode, num_classes, input_shape, weights, dropout, fine_tune_layers):
    k = keras()
    base = build_base(base_name, input_shape, weights)
    inp = k.Input(input_shape, name="image")
    x = _imagenet_input(k, base_name, input_shape[-1])(inp)
    if mode == "finetune":
        for layer in base.layers:  # the report's momentum: BN statistics adapt faster
            if isinstance(layer, k.layers.BatchNormalization):
                layer.momentum = 0.9
    base.trainable = mode == "full"
    feats = base(x, training=False) if mode in ("features", "frozen") else base(x)
    head = _head(k, num_classes, dropout)
    model = k.Model(inp, head(feats), name=f"{base_name}_{mode}")
    # Read by toolkit.train (plain attribute: it does not survive saving, nor needs to).
    model.edgeproof_transfer = {"mode": mode, "base": base.name, "head": head.name,
                              "fine_tune_layers": int(fine_tune_layers)}
    model.edgeproof_features = feats  # the base's output: what feature extraction caches
    return model


def unfreeze_top(model, n_layers: int) -> int:
    """Make the top ``n_layers`` of the nested base trainable; returns how many are.

    Example:
        >>> unfreeze_top(model, 50)  # doctest: +SKIP
        50
    """
    base = model.get_layer(model.edgeproof_transfer["base"])
    base.trainable = True
    cut = max(0, len(base.layers) - int(n_layers))
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut
    return sum(1 for layer in base.layers if layer.trainable)


_RECIPES = {
    "features": ("feature extraction: base run once, cached features, "
                 "Flatten-Dense256-Dropout0.5-Dense trained on them", 0.5),
    "frozen": ("frozen base inside the model (train with --augment chollet), "
               "Flatten-Dense256-Dense", 0.0),
    "finetune": ("head first, then the top N base layers unfrozen at a low LR "
                 "(BatchNorm momentum 0.9)", 0.5),
    "full": ("every layer trainable from the start (CIFAR-10 report)", 0.5),
}


def _register(base_name: str, mode: str) -> None:
    desc, dropout = _RECIPES[mode]
    default_size = 150 if base_name == "inception_v3" else 32
    ft_default = 50

    def builder(num_classes, input_shape, weights="imagenet", fine_tune_layers=ft_default,
                dropout=dropout):
        return _assemble(base_name, mode, num_classes, input_shape, weights, dropout,
                         fine_tune_layers)

    builder.__name__ = f"{base_name}_{mode}"
    register_model(f"{base_name}_{mode}", description=f"{BASES[base_name][0]} {desc}",
                   default_input_shape=(default_size, default_size, 3), family="transfer",
                   min_size=BASES[base_name][1])(builder)


for _base in BASES:
    for _mode in ("features", "frozen", "finetune"):
        _register(_base, _mode)
_register("resnet50", "full")
