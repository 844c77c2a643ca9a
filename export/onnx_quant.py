"""Reduced-precision ONNX: ONNX Runtime int8 quantization (static QDQ or dynamic) and float16.

Both start from the float32 graph tf2onnx makes (``keras_to_onnx``) and keep float32
inputs and outputs, so the manifest's input stays float32 and every runtime feeds them
exactly as it feeds ``onnx-fp32``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext
from edgeproof.export.onnx_export import keras_to_onnx, onnx_artifact
from edgeproof.errors import ExportError, first_line


def _reader(x: np.ndarray, input_name: str, batch: int = 16):
    """A CalibrationDataReader over float inputs ``x`` (the same images TFLite int8 sees)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{input_name: x[i:i + batch]} for i in range(0, len(x), batch)])

        def get_next(self):
            return next(self._batches, None)

    return _Reader()


def _preprocess(src: Path, dst: Path) -> Path:
    """ORT's recommended pre-processing (shape inference, graph optimization); optional."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception:  # pre-processing only helps; quantizing the raw graph is still valid
        return src


def convert_onnx_int8(model, ctx: ExportContext, *, fmt: str, opset: int = 17,
                      mode: str = "static", **options) -> Artifact:
    """ONNX int8: static QDQ (per-channel int8 weights, calibrated int8 activations) or dynamic.

    Args:
        model: the Keras model.
        ctx: the export context; ``static`` needs ``ctx.calibration``.
        fmt: the format name (``onnx-int8``).
        opset: the ONNX opset of the float graph (QDQ per-channel needs >= 13).
        mode: ``static`` (calibrated, QDQ) or ``dynamic`` (weights only, activations
            quantized at run time).

    Example:
        >>> art = convert_onnx_int8(model, ctx, fmt="onnx-int8", mode="static")  # doctest: +SKIP
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode == "static" and (ctx.calibration is None or len(ctx.calibration) == 0):
        raise ExportError(f"{fmt} (mode=static) needs calibration data: pass --calib DATA, or "
                          "--option mode=dynamic.")
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, {"mode": mode, **options})
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        onnx.save(proto, str(src))
        pre = _preprocess(src, Path(d) / "pre.onnx")
        try:
            if mode == "static":
                quantize_static(str(pre), str(out), _reader(ctx.calibration_float(),
                                                            manifest.input.name),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
            else:
                # ConvInteger has no int8-weight CPU kernel: dynamic mode uses uint8 weights.
                quantize_dynamic(str(pre), str(out), weight_type=QuantType.QUInt8)
        except Exception as e:
            raise ExportError(f"{fmt} quantization failed: {first_line(e)}. Try --option "
                              "mode=dynamic, another opset, or tflite-int8.") from None
        qproto = onnx.load(str(out))
    if mode == "static":
        manifest.calibration = ctx.calibration_info
    return onnx_artifact(qproto, manifest)


def convert_onnx_fp16(model, ctx: ExportContext, *, fmt: str, opset: int = 17,
                      **options) -> Artifact:
    """ONNX with float16 weights and activations; inputs and outputs stay float32.

    Args:
        model: the Keras model.
        ctx: the export context.
        fmt: the format name (``onnx-fp16``).
        opset: the ONNX opset of the float graph.

    Example:
        >>> art = convert_onnx_fp16(model, ctx, fmt="onnx-fp16")  # doctest: +SKIP
    """
    from onnxconverter_common import float16

    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, options)
    try:
        half = float16.convert_float_to_float16(proto, keep_io_types=True)
    except Exception as e:
        raise ExportError(f"{fmt} conversion failed: {first_line(e)}. Try onnx-fp32 or "
                          "tflite-fp16.") from None
    return onnx_artifact(half, manifest)
