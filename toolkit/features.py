"""Base features of ``*_features`` transfer models, cached on disk across runs.

Feature extraction runs the frozen base once over the training and validation images;
for InceptionV3 on the flowers that forward pass dominates the run. The features are
kept in ``$EDGEPROOF_CACHE`` (default ``~/.cache/edgeproof/features``), one ``.npz`` per
split, under a key made of everything that determines them: the base's name and a hash
of its weights, the input shape, the preprocessing and a fingerprint of the images. Any
change of those is a different key, so a stale file is never read.

Example:
    >>> feats = cached_features(model, "train", x, ds, compute)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgeproof.atomic import atomic_write_bytes


def cache_dir() -> Path:
    """Where features are kept (``EDGEPROOF_CACHE`` overrides)."""
    root = os.environ.get("EDGEPROOF_CACHE") or Path.home() / ".cache" / "edgeproof"
    return Path(root) / "features"


def feature_key(base, x: np.ndarray, preprocessing, split: str) -> str:
    """sha256 over the base (name, weights, compute dtype), input shape, preprocessing and
    the images.

    Example:
        >>> feature_key(base, ds.x_train, ds.preprocessing, "train")[:12]  # doctest: +SKIP
        '3f1c0e9a5b27'
    """
    h = hashlib.sha256()
    # The compute dtype too: bf16 features differ from float32 ones in the low bits.
    policy = getattr(getattr(base, "dtype_policy", None), "name", "float32")
    h.update(json.dumps({"base": base.name, "input": list(x.shape[1:]), "split": split,
                         "policy": policy, "preprocessing": asdict(preprocessing)},
                        sort_keys=True).encode())
    for w in base.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def cached_features(base, split: str, x: np.ndarray, preprocessing, compute) -> tuple[np.ndarray, bool]:
    """The features of ``x`` from the cache, else ``compute(x)`` stored for next time.

    Returns (features, whether they came from the cache).
    """
    path = cache_dir() / f"{feature_key(base, x, preprocessing, split)}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return z["features"], True
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # unreadable: computed again below
    # Stored as float32: a bfloat16 array (mixed precision) would come back from np.load
    # as raw bytes ("V2"), which TensorFlow cannot read; the widening is exact.
    feats = np.asarray(compute(x), np.float32)
    buf = io.BytesIO()
    np.savez(buf, features=feats)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return feats, False
