"""TFLite converters: float32, dynamic-range, float16, full-integer int8 and int16x8.

Every converted flatbuffer carries its manifest as a ``Model.metadata`` entry named
``edgeproof_manifest`` (TFLite keeps named metadata such as ``min_runtime_version`` as
``(name, buffer index)`` pairs; interpreters ignore unknown entries, so the file runs
unchanged). Reading it back is ``edgeproof.embedded.read_tflite_manifest``.
"""

from __future__ import annotations

import numpy as np

from edgeproof.embedded import LEGACY_KEYS, MANIFEST_KEY, tflite_schema
from edgeproof.errors import ExportError, first_line
from edgeproof.options import split_names
from edgeproof.export.artifact import Artifact
from edgeproof.export.context import (ExportContext, base_manifest, source_of, tf_keras_of,
                                      tflite_converter)
from edgeproof.export.graph import int8_friendly
from edgeproof.export.litert_torch_export import litert_torch_tflite
from edgeproof.reference_torch import TORCH_KINDS
from edgeproof.quiet import quiet_native
from edgeproof.tfcompat import tf

_KEYS = (MANIFEST_KEY, *LEGACY_KEYS)


def _converter(model, fmt: str = "tflite"):
    # tf-keras, Keras 3 and SavedModel sources (export.context); ONNX is refused there.
    return tflite_converter(model, fmt)


def representative_dataset(ctx: ExportContext, fmt: str):
    """The converter's ``representative_dataset``: one calibration image per step, as the
    model's float input (the same preprocessing every runtime uses).

    Raises:
        ExportError: the context has no calibration images.

    Example:
        >>> converter.representative_dataset = representative_dataset(ctx, "tflite-int8")  # doctest: +SKIP
    """
    if ctx.calibration is None or len(ctx.calibration) == 0:
        raise ExportError(f"{fmt} needs calibration data: pass --calib DATA (a dataset the "
                          "model was trained on; a few hundred images are drawn from its train split).")
    x = ctx.calibration_float()

    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1]]

    return gen


def _convert(conv, fmt: str) -> bytes:
    try:
        with quiet_native():
            return conv.convert()
    except Exception as e:
        # The converter's first line is often a banner; prefer the line naming the error.
        msg = next((ln for ln in str(e).splitlines() if "error" in ln.lower()), first_line(e))
        raise ExportError(f"{fmt} conversion failed: {msg[:300]}. Try tflite-fp32 or check the "
                          "model's custom layers (SELECT_TF_OPS are not enabled).") from None


def _io_quantization(data: bytes, manifest) -> None:
    """Read the converted model's real input/output dtype and quantization into the manifest."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native():
        interp = Interpreter(model_content=data)
    for spec, det in ((manifest.input, interp.get_input_details()[0]),
                      (manifest.output, interp.get_output_details()[0])):
        spec.dtype = np.dtype(det["dtype"]).name
        scale, zp = det["quantization"]
        spec.quantization = {"scale": float(scale), "zero_point": int(zp)} if scale else None
        spec.name = det["name"]


def int8_converter(model, ctx: ExportContext, fmt: str):
    """A full-integer converter of ``model`` with its representative dataset set, and the
    graph rewrites applied first (average pooling for XNNPACK, see export/graph.py).

    Example:
        >>> conv, rewrites = int8_converter(model, ctx, "tflite-int8")  # doctest: +SKIP
    """
    t = tf()
    keras_model = tf_keras_of(model)  # the pooling rewrite is a tf-keras graph rewrite
    rewritten, rewrites = int8_friendly(keras_model) if keras_model is not None else (model, {})
    conv = _converter(rewritten, fmt)
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative_dataset(ctx, fmt)
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv, rewrites


def _selective(conv, float_layers: list[str], fmt: str, int_io: bool) -> bytes:
    """int8 with the ops producing ``float_layers`` (tensor names) kept in float, through the
    quantization debugger's denylist; inputs and outputs int8 when ``int_io``."""
    t = tf()
    options = t.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers,
                                                          fully_quantize=int_io)
    try:
        with quiet_native():
            debugger = t.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=conv.representative_dataset, debug_options=options)
            return debugger.get_nondebug_quantized_model()
    except Exception as e:
        raise ExportError(f"{fmt} with float_layers failed: {first_line(e)}. Check the names "
                          "(tensor names from --debug-quant).") from None


def convert_tflite(model, ctx: ExportContext, *, fmt: str, mode: str, io_type: str = "int8",
                   float_layers="", **options) -> Artifact:
    """Convert a model to TFLite: TensorFlow kinds with TensorFlow's converter, a PyTorch
    reference with litert-torch (``export.litert_torch_export``: fp32, dynamic, int8).

    Args:
        mode: ``fp32``, ``dynamic`` (int8 weights), ``fp16`` (float16 weights), ``int8``
            (full integer, needs calibration) or ``int16x8`` (16-bit activations).
        io_type: input/output type of ``int8``: ``int8``, ``uint8`` or ``float32``.
        float_layers: int8 only: tensor names (a list, or comma-separated) whose ops stay
            float (selective quantization; the names ``--debug-quant`` lists).
    """
    if source_of(model).kind in TORCH_KINDS:  # PyTorch → litert-torch, not TF's converter
        data, manifest = litert_torch_tflite(model, ctx, fmt=fmt, mode=mode, io_type=io_type,
                                             float_layers=float_layers, **options)
        _io_quantization(data, manifest)
        return tflite_artifact(data, manifest)
    t = tf()
    keep_float = split_names(float_layers)
    if keep_float and io_type == "uint8":
        raise ExportError(f"{fmt}: float_layers works with io_type int8 or float32, not uint8.")
    rewrites = {}
    if mode == "int8":  # XNNPACK has no int8 average pooling: an exact rewrite is converted
        conv, rewrites = int8_converter(model, ctx, fmt)
        conv.inference_input_type = conv.inference_output_type = getattr(t, io_type)
    else:
        conv = _converter(model, fmt)
        if mode != "fp32":
            conv.optimizations = [t.lite.Optimize.DEFAULT]
        if mode == "fp16":
            conv.target_spec.supported_types = [t.float16]
        elif mode == "int16x8":
            conv.representative_dataset = representative_dataset(ctx, fmt)
            conv.target_spec.supported_ops = [
                t.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    data = _selective(conv, keep_float, fmt, io_type != "float32") if keep_float \
        else _convert(conv, fmt)
    opts = dict(options)
    if mode == "int8":
        opts["io_type"] = io_type
    manifest = base_manifest(model, ctx, fmt, opts)
    if mode not in ("int8", "int16x8"):
        manifest.calibration = None
    if keep_float:
        manifest.conversion["float_layers"] = {"layers": keep_float,
                                               "why": "kept float on request (float_layers)"}
    if rewrites:
        manifest.conversion["graph_rewrites"] = {
            **rewrites, "why": "XNNPACK delegates int8 depthwise conv and mul, not int8 average "
                              "pooling; the rewrite computes the same float function"}
    _io_quantization(data, manifest)
    return tflite_artifact(data, manifest)


def tflite_artifact(data: bytes, manifest) -> Artifact:
    """Embed ``manifest`` in the flatbuffer's metadata and wrap it as an Artifact.

    Flatbuffers cannot repack files over 2 GB; such a model keeps only its sidecar
    manifest (a warning says so) rather than failing the export.

    Args:
        data: the converted TFLite flatbuffer.
        manifest: its manifest (I/O dtypes and quantization already filled in).

    Example:
        >>> art = tflite_artifact(converter.convert(), manifest)  # doctest: +SKIP
    """
    try:
        data = embed_tflite_manifest(data, manifest.to_json())
    except Exception as e:  # the sidecar still carries the manifest
        import logging

        logging.getLogger("edgeproof").warning(
            "%s: manifest not embedded in the .tflite (%s); it is in the sidecar JSON only.",
            manifest.format, str(e)[:200])
    return Artifact(data, ".tflite", manifest)


def embed_tflite_manifest(data: bytes, manifest_json: str) -> bytes:
    """Return ``data`` with ``manifest_json`` stored as metadata ``edgeproof_manifest``.

    An existing manifest entry (either name) is replaced, other metadata kept.

    Args:
        data: a TFLite flatbuffer.
        manifest_json: the manifest as JSON text.

    Example:
        >>> data = embed_tflite_manifest(data, manifest.to_json())  # doctest: +SKIP
    """
    import flatbuffers

    fb = tflite_schema()
    model = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buf = fb.BufferT()
    buf.data = np.frombuffer(manifest_json.encode(), dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buf]
    entry = fb.MetadataT()
    entry.name = MANIFEST_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or [])
                      if (m.name.decode() if isinstance(m.name, bytes) else m.name) not in _KEYS]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(max(1024, len(data) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
