"""The Keras format: the trained model itself, loadable again."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from export.artifact import Artifact
from export.context import ExportContext, base_manifest
from toolkit.errors import ExportError, ModelError, first_line


def convert_keras(model, ctx: ExportContext, *, fmt: str, **options) -> Artifact:
    """Serialize the model as a ``.keras`` archive (it loads again with ``safe_mode=True``).

    Args:
        model: the Keras model.
        ctx: the export context.
        fmt: the format name (``keras``).

    Example:
        >>> art = convert_keras(model, ctx, fmt="keras")  # doctest: +SKIP
    """
    manifest = base_manifest(model, ctx, fmt, options)
    manifest.calibration = None
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.keras"
        try:
            model.save(path)
        except Exception as e:
            raise ExportError(f"Cannot save the Keras model: {first_line(e)}") from None
        return Artifact(path.read_bytes(), ".keras", manifest)


def convert_saved_model(model, ctx: ExportContext, *, fmt: str, **options) -> Artifact:
    """Serialize the model as a TensorFlow SavedModel folder (a folder artifact).

    Args:
        model: the Keras model.
        ctx: the export context.
        fmt: the format name (``saved_model``).

    Example:
        >>> art = convert_saved_model(model, ctx, fmt="saved_model")  # doctest: +SKIP
        >>> "saved_model.pb" in art.files  # doctest: +SKIP
        True
    """
    manifest = base_manifest(model, ctx, fmt, options)
    manifest.calibration = None
    from toolkit.quiet import quiet_native

    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "saved_model"
        try:
            with quiet_native():
                model.save(os.fspath(root), save_format="tf")
        except Exception as e:
            raise ExportError(f"Cannot save the SavedModel: {first_line(e)}. "
                              "Try the keras format.") from None
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
    return Artifact(b"", "", manifest, files=files)


def load_keras_model(path: str | Path, safe_mode: bool = True):
    """Load a user's Keras model (``.keras``, ``.h5`` or a SavedModel folder).

    ``safe_mode`` refuses ``.keras`` files with Lambda layers (arbitrary code); pass
    ``safe_mode=False`` (``--unsafe``) only for files you trust.
    """
    from toolkit.tfcompat import keras

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
