"""Loading a user's Keras model: the preprocessing it expects is read from its own first
layers (Rescaling, Normalization, after a Resizing) or left unknown when they do not say."""

from __future__ import annotations

import numpy as np

from edgeproof.keras_loader import detect_preprocessing
from edgeproof.tfcompat import keras


def test_detection_of_the_models_own_preprocessing():
    k = keras()

    def seq(*layers):
        return k.Sequential([k.Input((8, 8, 3)), *layers, k.layers.Flatten()])

    assert "Rescaling" in detect_preprocessing(seq(k.layers.Rescaling(1 / 255)))
    assert "Rescaling" in detect_preprocessing(seq(k.layers.Resizing(8, 8),
                                                   k.layers.Rescaling(1 / 127.5, offset=-1)))
    assert detect_preprocessing(seq(k.layers.Rescaling(2.0, offset=-1.0))) is None  # [0,1] in
    assert detect_preprocessing(seq(k.layers.Conv2D(2, 3))) is None
    norm = k.layers.Normalization()
    norm.adapt(np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3)).astype("float32"))
    assert "Normalization" in detect_preprocessing(seq(norm))
