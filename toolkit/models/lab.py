"""The lab CNNs: Chollet's flowers CNN, LeNet-5 and a small CNN for quick runs."""

from __future__ import annotations

from edgeproof.toolkit.models.model_table import register_model
from edgeproof.tfcompat import keras


def _head(k, x, num_classes):
    # The classifier head stays float32 so mixed precision never softmaxes in float16.
    return k.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)


@register_model("small_cnn", description="Conv16-Pool-Conv32-Pool-Dense64: seconds to train, "
                "the default of `edgeproof run`", default_input_shape=(32, 32, 1))
def small_cnn(num_classes, input_shape):
    k = keras()
    inp = k.Input(input_shape, name="image")
    x = k.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(64, activation="relu")(x)
    return k.Model(inp, _head(k, x, num_classes), name="small_cnn")


def _flowers(num_classes, input_shape, dropout: float):
    k = keras()
    inp = k.Input(input_shape, name="image")
    x = inp
    for filters in (32, 64, 128, 128):
        x = k.layers.Conv2D(filters, 3, activation="relu")(x)
        x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Flatten()(x)
    if dropout:
        x = k.layers.Dropout(dropout)(x)
    x = k.layers.Dense(512, activation="relu")(x)
    return inp, _head(k, x, num_classes)


@register_model("flowers_cnn", description="Chollet's CNN: 4x(Conv-MaxPool), Dense512 "
                "(3,455,173 params at 150x150x3, 5 classes)", default_input_shape=(150, 150, 3),
                min_size=46)
def flowers_cnn(num_classes, input_shape):
    inp, out = _flowers(num_classes, input_shape, dropout=0.0)
    return keras().Model(inp, out, name="flowers_cnn")


@register_model("flowers_cnn_dropout", description="flowers_cnn with Dropout(0.5) before Dense512",
                default_input_shape=(150, 150, 3), min_size=46)
def flowers_cnn_dropout(num_classes, input_shape, dropout=0.5):
    inp, out = _flowers(num_classes, input_shape, dropout=dropout)
    return keras().Model(inp, out, name="flowers_cnn_dropout")


@register_model("lenet5", description="LeNet-5 (LeCun 1998): C1 6@5x5, S2, C3 16@5x5, S4, "
                "C5 120, F6 84, output", default_input_shape=(32, 32, 1), min_size=28)
def lenet5(num_classes, input_shape):
    k = keras()
    inp = k.Input(input_shape, name="image")
    x = k.layers.Conv2D(6, 5, activation="tanh")(inp)
    x = k.layers.AveragePooling2D(2)(x)
    x = k.layers.Conv2D(16, 5, activation="tanh")(x)
    x = k.layers.AveragePooling2D(2)(x)
    x = k.layers.Conv2D(120, 5 if min(input_shape[:2]) >= 32 else 4, activation="tanh")(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(84, activation="tanh")(x)
    return k.Model(inp, _head(k, x, num_classes), name="lenet5")
