"""The Keras format: the trained model itself, loadable again."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.quiet import quiet_native
from edgeproof.errors import ExportError, first_line


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
