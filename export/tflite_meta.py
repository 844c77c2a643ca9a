"""The manifest embedded in a TFLite flatbuffer: a ``Model.metadata`` entry with a buffer.

TFLite keeps named metadata (``min_runtime_version``, TFLite Support's
``TFLITE_METADATA``) as ``(name, buffer index)`` pairs; edgekit adds one named
``edgekit_manifest`` holding the manifest JSON. Interpreters ignore unknown entries,
so the file runs unchanged. Uses the schema ``ai-edge-litert`` ships: no TensorFlow.
"""

from __future__ import annotations

import json

import numpy as np

MANIFEST_KEY = "edgekit_manifest"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def embed_tflite_manifest(data: bytes, manifest_json: str) -> bytes:
    """Return ``data`` with ``manifest_json`` stored as metadata ``edgekit_manifest``.

    An existing ``edgekit_manifest`` entry is replaced, other metadata kept.

    Args:
        data: a TFLite flatbuffer.
        manifest_json: the manifest as JSON text.

    Example:
        >>> data = embed_tflite_manifest(data, manifest.to_json())  # doctest: +SKIP
    """
    import flatbuffers

    fb = _schema()
    model = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buf = fb.BufferT()
    buf.data = np.frombuffer(manifest_json.encode(), dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buf]
    entry = fb.MetadataT()
    entry.name = MANIFEST_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or [])
                      if (m.name.decode() if isinstance(m.name, bytes) else m.name) != MANIFEST_KEY]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(max(1024, len(data) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_tflite_manifest(data: bytes) -> dict | None:
    """The embedded manifest dict of a TFLite flatbuffer, or None when it has none.

    Args:
        data: the TFLite file's bytes.

    Example:
        >>> read_tflite_manifest(open("m.tflite", "rb").read())["format"]  # doctest: +SKIP
        'tflite-int8'
    """
    try:
        fb = _schema()
    except ImportError:
        return None
    try:
        model = fb.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            if meta.Name() != MANIFEST_KEY.encode():
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
