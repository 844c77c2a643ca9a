"""Reduced-precision ONNX: ONNX Runtime int8 quantization (static QDQ or dynamic) and float16.

Both start from the float32 graph tf2onnx makes (``keras_to_onnx``) and keep float32
inputs and outputs, so the manifest's input stays float32 and every runtime feeds them
exactly as it feeds ``onnx-fp32``.

Static int8 defaults to uint8 activations with int8 per-channel weights (U8S8) and a
dedicated DequantizeLinear per consumer. Measured on InceptionV3-150 (docs/BENCHMARKS.md):
with int8 activations ONNX Runtime's CPU provider fused only 53 of 94 Conv nodes into
QLinearConv (the rest ran in float between Q/DQ pairs, with layout transposes between
the two kinds) and int8 was slower than fp32; with uint8 activations all 94 fuse. The
U8S8 kernels can saturate on x86 CPUs without VNNI (ONNX Runtime's quantization guide);
the export check's parity numbers show it when it happens, and ``activations=int8``
switches back.
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
                      mode: str = "static", activations: str = "uint8",
                      calibration: str = "minmax", **options) -> Artifact:
    """ONNX int8: static QDQ (per-channel int8 weights, calibrated int8 activations) or dynamic.

    Args:
        model: the Keras model.
        ctx: the export context; ``static`` needs ``ctx.calibration``.
        fmt: the format name (``onnx-int8``).
        opset: the ONNX opset of the float graph (QDQ per-channel needs >= 13).
        mode: ``static`` (calibrated, QDQ) or ``dynamic`` (weights only, activations
            quantized at run time).
        activations: ``uint8`` (U8S8, the default: fastest here) or ``int8`` (S8S8).
        calibration: ``minmax``, ``entropy`` or ``percentile`` (static mode).

    Example:
        >>> art = convert_onnx_int8(model, ctx, fmt="onnx-int8", mode="static")  # doctest: +SKIP
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    if mode == "static" and (ctx.calibration is None or len(ctx.calibration) == 0):
        raise ExportError(f"{fmt} (mode=static) needs calibration data: pass --calib DATA, or "
                          "--option mode=dynamic.")
    opts = {"mode": mode, **options}
    if mode == "static":
        opts.update(activations=activations, calibration=calibration)
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, opts)
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        onnx.save(proto, str(src))
        pre = _preprocess(src, Path(d) / "pre.onnx")
        try:
            if mode == "static":
                method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                          "percentile": CalibrationMethod.Percentile}[calibration]
                act = QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8
                quantize_static(str(pre), str(out), _reader(ctx.calibration_float(),
                                                            manifest.input.name),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=act, weight_type=QuantType.QInt8,
                                calibrate_method=method,
                                extra_options={"DedicatedQDQPair": True})
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
