"""The reference model's answers: what every export is compared with.

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


def reference_probs(model, ds: Dataset, threads: int | None = None, preprocessing=None,
                    split: str = "test") -> np.ndarray:
    """A Keras model's probabilities on a split of ``ds`` through the shared preprocessing
    (``preprocessing``: what the model expects, default the dataset's).

    Example:
        >>> reference_probs(model, load_dataset("digits")).shape  # doctest: +SKIP
        (360, 10)
    """
    ctx = ExportContext(ds.class_names, preprocessing or ds.preprocessing)
    manifest = base_manifest(model, ctx, "keras", {})
    with KerasRuntime(model, manifest, threads=threads) as rt:
        return rt.predict_images(getattr(ds, f"x_{split}"))
