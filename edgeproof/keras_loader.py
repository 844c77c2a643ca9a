"""Loading a user's Keras model (``.keras``, ``.h5`` or a SavedModel folder), and what
pixels it expects.

The core owns it because every layer needs it: training resumes and evaluates a model,
the exporters convert one, and the Keras runtime benchmarks one.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeproof.errors import ModelError, first_line
from edgeproof.manifest import Manifest, Preprocessing, manifest_path
from edgeproof.tfcompat import keras


def load_keras_model(path: str | Path, safe_mode: bool = True):
    """Load a user's Keras model (``.keras``, ``.h5`` or a SavedModel folder).

    ``safe_mode`` refuses ``.keras`` files with Lambda layers (arbitrary code); pass
    ``safe_mode=False`` (``--unsafe``) only for files you trust.

    Raises:
        ModelError: missing, not a Keras model, refused (Lambda) or unreadable.

    Example:
        >>> load_keras_model("runs/demo/models/small_cnn-keras.keras").name  # doctest: +SKIP
        'small_cnn'
    """
    k = keras()
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model not found: {p}")
    if p.is_file() and p.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"{p} is not a Keras model: expected .keras, .h5 or a SavedModel folder.")
    if p.is_dir() and not (p / "saved_model.pb").exists():
        raise ModelError(f"{p} is a folder without saved_model.pb; not a SavedModel.")
    try:
        kw = {"safe_mode": safe_mode} if p.suffix == ".keras" else {}
        return k.models.load_model(os.fspath(p), compile=False, **kw)
    except Exception as e:
        msg = first_line(e)
        if "lambda" in msg.lower() or "safe_mode" in msg.lower():
            raise ModelError(f"{p} contains a Lambda layer (arbitrary code); refused. Pass --unsafe "
                             "only if you trust the file.") from None
        raise ModelError(f"Cannot load {p} as a Keras model: {msg[:200]}") from None


def model_preprocessing(model, model_path) -> tuple[Preprocessing, list[str] | None]:
    """The preprocessing a Keras model expects, and its class names when known.

    From the manifest beside the model when edgeproof wrote one; else the input shape
    with the default 1/255 scaling, and no class names (None).

    Example:
        >>> pre, names = model_preprocessing(model, "runs/train/model.keras")  # doctest: +SKIP
    """
    side = manifest_path(model_path)
    if side.exists():
        m = Manifest.load(side)
        return m.preprocessing, list(m.class_names)
    h, w, c = (int(d) for d in model.inputs[0].shape[1:4])
    return Preprocessing(size=[h, w], color="grayscale" if c == 1 else "rgb"), None
