"""Reading the manifest embedded in a TFLite or ONNX file (no TensorFlow needed).

Exporters store the manifest inside the artifact too, so a lone ``.tflite`` or ``.onnx``
still tells a runtime its classes, preprocessing and input/output: in TFLite as a
``Model.metadata`` entry with a buffer, in ONNX as a ``metadata_props`` entry. Files
written by edgekit 0.1.0 (this project's former name) used the key ``edgekit_manifest``;
they still load.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_KEY = "edgeproof_manifest"
LEGACY_KEYS = ("edgekit_manifest",)
_KEYS = (MANIFEST_KEY, *LEGACY_KEYS)


def tflite_schema():
    """The TFLite flatbuffer schema module that ``ai-edge-litert`` ships."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_tflite_manifest(data: bytes) -> dict | None:
    """The embedded manifest dict of a TFLite flatbuffer, or None when it has none.

    Args:
        data: the TFLite file's bytes.

    Example:
        >>> read_tflite_manifest(b"not a flatbuffer") is None
        True
    """
    try:
        fb = tflite_schema()
    except ImportError:
        return None
    try:
        model = fb.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            if meta.Name().decode(errors="replace") not in _KEYS:
                continue
            buf = model.Buffers(meta.Buffer())
            if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
                raw = data[buf.Offset():buf.Offset() + buf.Size()]
            else:
                raw = buf.DataAsNumpy().tobytes()
            return json.loads(raw.decode())
    except Exception:  # not a flatbuffer we can read: no embedded manifest
        return None
    return None


def read_onnx_manifest(path: str | Path) -> dict | None:
    """The embedded manifest dict of an ONNX file, or None when it has none or is unreadable.

    Example:
        >>> read_onnx_manifest("missing.onnx") is None
        True
    """
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    props = {p.key: p.value for p in model.metadata_props}
    for key in _KEYS:
        if key in props:
            try:
                return json.loads(props[key])
            except json.JSONDecodeError:
                return None
    return None


def read_embedded_manifest(path: str | Path) -> dict | None:
    """The manifest embedded in ``path`` (``.tflite`` or ``.onnx``), else None.

    Example:
        >>> read_embedded_manifest("model.keras") is None
        True
    """
    p = Path(path)
    if not p.is_file():
        return None
    if p.suffix == ".tflite":
        return read_tflite_manifest(p.read_bytes())
    if p.suffix == ".onnx":
        return read_onnx_manifest(p)
    return None
