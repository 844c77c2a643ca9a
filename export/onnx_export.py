"""ONNX converter (tf2onnx): NHWC float32 input as in Keras, dynamic batch dimension."""

from __future__ import annotations

import json

from export.artifact import Artifact
from export.context import ExportContext, base_manifest
from toolkit.errors import ExportError
from toolkit.tfcompat import tf


def convert_onnx(model, ctx: ExportContext, *, fmt: str, opset: int = 17, **options) -> Artifact:
    """Convert a Keras model to ONNX with tf2onnx; the manifest is embedded in metadata_props."""
    t = tf()
    import tf2onnx

    manifest = base_manifest(model, ctx, fmt, {"opset": opset, **options})
    manifest.calibration = None
    shape = [None] + manifest.input.shape[1:]
    spec = (t.TensorSpec(shape, t.float32, name="input"),)
    from toolkit.quiet import quiet_native

    try:
        with quiet_native():
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise ExportError(f"{fmt} conversion failed: {(msg[0] if msg else type(e).__name__)[:300]}. "
                          "Try another --opset, or tflite formats.") from None
    manifest.input.name = proto.graph.input[0].name
    manifest.output.name = proto.graph.output[0].name
    proto.producer_name = "edgekit"
    prop = proto.metadata_props.add()
    prop.key = "edgekit_manifest"
    prop.value = json.dumps(manifest.to_dict())
    return Artifact(proto.SerializeToString(), ".onnx", manifest)
