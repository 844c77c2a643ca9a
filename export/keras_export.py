"""The Keras formats: the model itself, loadable again (``keras``), and a SavedModel folder.

A tf-keras model is saved by tf-keras, a Keras 3 model by Keras 3 (``.keras``; its
SavedModel through ``model.export()``); a SavedModel reference is copied as it is. An
ONNX reference has no Keras form: both formats refuse it with a one-line error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgeproof.errors import ExportError, first_line
from edgeproof.export.artifact import Artifact
from edgeproof.reference_torch import TORCH_KINDS
from edgeproof.export.context import ExportContext, base_manifest, source_of
from edgeproof.quiet import quiet_native
from edgeproof.reference_tf import serving_saved_model


def convert_keras(model, ctx: ExportContext, *, fmt: str, **options) -> Artifact:
    """Serialize the model as a ``.keras`` archive (it loads again with ``safe_mode=True``),
    with the Keras that built it.

    Args:
        model: a live Keras model or a ``Reference`` (tf-keras or Keras 3).
        ctx: the export context.
        fmt: the format name (``keras``).

    Example:
        >>> art = convert_keras(model, ctx, fmt="keras")  # doctest: +SKIP
    """
    ref = source_of(model)
    if ref.model is None:
        raise ExportError(f"{ref.describe()} has no Keras form for the {fmt} format; bench it "
                          "as it is, or export the other formats.")
    manifest = base_manifest(model, ctx, fmt, options)
    manifest.calibration = None
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.keras"
        try:
            ref.model.save(path)
        except Exception as e:
            raise ExportError(f"Cannot save the Keras model: {first_line(e)}") from None
        return Artifact(path.read_bytes(), ".keras", manifest)


def _folder_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def convert_saved_model(model, ctx: ExportContext, *, fmt: str, **options) -> Artifact:
    """Serialize the model as a TensorFlow SavedModel folder (a folder artifact).

    Args:
        model: a live Keras model or a ``Reference`` (tf-keras, Keras 3 or SavedModel).
        ctx: the export context.
        fmt: the format name (``saved_model``).

    Example:
        >>> art = convert_saved_model(model, ctx, fmt="saved_model")  # doctest: +SKIP
        >>> "saved_model.pb" in art.files  # doctest: +SKIP
        True
    """
    ref = source_of(model)
    if ref.kind in ("onnx", *TORCH_KINDS):
        raise ExportError(f"{ref.describe()} is not a TensorFlow graph for the {fmt} format; "
                          "use onnx-fp32, onnx-fp16 or onnx-int8.")
    manifest = base_manifest(model, ctx, fmt, options)
    manifest.calibration = None
    if ref.kind == "saved_model" and not ref.outputs_logits:
        return Artifact(b"", "", manifest, files=_folder_files(ref.path))  # itself
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "saved_model"
        try:
            with quiet_native():
                if ref.kind == "tf_keras":
                    ref.model.save(os.fspath(root), save_format="tf")
                else:  # Keras 3 (its own export) or a logits SavedModel with its softmax
                    _copy_serving(ref, root)
        except Exception as e:
            raise ExportError(f"Cannot save the SavedModel: {first_line(e)}. "
                              "Try the keras format.") from None
        files = _folder_files(root)
    return Artifact(b"", "", manifest, files=files)


def _copy_serving(ref, root: Path) -> None:
    folder, _ = serving_saved_model(ref)
    shutil.copytree(folder, root)
