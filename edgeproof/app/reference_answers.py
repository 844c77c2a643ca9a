"""The reference model's answers: what every export is compared with.

A tf-keras model runs on the Keras runtime (``tf.function``, the threads asked for); a
Keras 3 model, a SavedModel or an ONNX file runs through its ``Reference.predict``
(the same ``tf.function`` call / serving signature / ONNX Runtime session the loader
built, softmax applied to logits). Either way the pixels go through the one shared
preprocessing function.

Example:
    >>> probs = reference_probs(model, ds)  # doctest: +SKIP
    >>> probs.shape  # doctest: +SKIP
    (360, 10)
"""

from __future__ import annotations

import numpy as np

from edgeproof.bench.runtimes.keras import KerasRuntime
from edgeproof.datasets import Dataset
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.preprocess import to_float
from edgeproof.reference import reference_from_model


def reference_probs(model, ds: Dataset, threads: int | None = None, preprocessing=None,
                    split: str = "test") -> np.ndarray:
    """A reference model's probabilities on a split of ``ds`` through the shared
    preprocessing (``preprocessing``: what the model expects, default the dataset's).

    Args:
        model: a live Keras model or a ``Reference`` of any kind.

    Example:
        >>> reference_probs(model, load_dataset("digits")).shape  # doctest: +SKIP
        (360, 10)
    """
    ref = reference_from_model(model)
    pre = preprocessing or ds.preprocessing
    images = getattr(ds, f"x_{split}")
    if ref.kind != "tf_keras":
        return ref.predict(to_float(images, pre)) if len(images) else \
            np.zeros((0, ref.num_classes), np.float32)
    ctx = ExportContext(ds.class_names, pre)
    manifest = base_manifest(ref.model, ctx, "keras", {})
    with KerasRuntime(ref.model, manifest, threads=threads) as rt:
        return rt.predict_images(images)
