"""ONNX converter (tf2onnx): NHWC float32 input as in Keras, dynamic batch dimension."""

from __future__ import annotations

import json

from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.embedded import LEGACY_KEYS, MANIFEST_KEY
from edgeproof.manifest import Manifest
from edgeproof.quiet import quiet_native
from edgeproof.errors import ExportError, first_line
from edgeproof.tfcompat import tf

def keras_to_onnx(model, ctx: ExportContext, fmt: str, opset: int, options: dict):
    """The float32 ONNX graph of ``model`` and its manifest (not yet embedded).

    Args:
        model: a single-input, single-output Keras model.
        ctx: the export context (class names, preprocessing).
        fmt: the format name recorded in the manifest.
        opset: the ONNX opset tf2onnx targets.
        options: the format's options, recorded in the manifest.

    Example:
        >>> proto, manifest = keras_to_onnx(model, ctx, "onnx-fp32", 17, {})  # doctest: +SKIP
    """
    t = tf()
    import tf2onnx

    manifest = base_manifest(model, ctx, fmt, {"opset": opset, **options})
    manifest.calibration = None
    shape = [None] + manifest.input.shape[1:]
    spec = (t.TensorSpec(shape, t.float32, name="input"),)
    try:
        with quiet_native():
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as e:
        raise ExportError(f"{fmt} conversion failed: {first_line(e)}. "
                          "Try another --option opset=N, or tflite formats.") from None
    manifest.input.name = proto.graph.input[0].name
    manifest.output.name = proto.graph.output[0].name
    return proto, manifest


def onnx_artifact(proto, manifest: Manifest) -> Artifact:
    """Embed ``manifest`` in the graph's ``metadata_props`` (replacing any) and wrap it.

    Example:
        >>> art = onnx_artifact(proto, manifest)  # doctest: +SKIP
    """
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in (MANIFEST_KEY, *LEGACY_KEYS)]
    del proto.metadata_props[:]
    for key, value in keep + [(MANIFEST_KEY, json.dumps(manifest.to_dict()))]:
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    proto.producer_name = "edgeproof"
    return Artifact(proto.SerializeToString(), ".onnx", manifest)


def convert_onnx(model, ctx: ExportContext, *, fmt: str, opset: int = 17, **options) -> Artifact:
    """Convert a Keras model to ONNX with tf2onnx; the manifest is embedded in metadata_props.

    Args:
        model: the Keras model.
        ctx: the export context.
        fmt: the format name (``onnx-fp32``).
        opset: the ONNX opset.

    Example:
        >>> art = convert_onnx(model, ctx, fmt="onnx-fp32")  # doctest: +SKIP
    """
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, options)
    return onnx_artifact(proto, manifest)
