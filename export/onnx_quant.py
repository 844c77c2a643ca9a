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

``engine=nncf`` quantizes the same float graph with NNCF's default post-training
quantization instead (``nncf.quantize``: its default preset, fast bias correction, every
calibration image, the same images ONNX Runtime's quantizer sees): the bar a user would
get from NNCF on edgeproof's own ``onnx-fp32``, so ``optimize`` can show both side by side.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, model_input
from edgeproof.export.onnx_export import keras_to_onnx, onnx_artifact
from edgeproof.errors import ExportError, first_line
from edgeproof.options import split_names


NNCF_INSTALL = 'pip install "edgeproof[openvino]"'  # the extra that pins nncf
_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh", "Softmax")
_WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


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


def _quantize(src: Path, out: Path, x, input_name: str, mode: str, activations: str,
              calibration: str, exclude: list[str]) -> None:
    """ONNX Runtime's quantizer over the pre-processed float graph ``src`` into ``out``."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    if mode == "dynamic":
        # ConvInteger has no int8-weight CPU kernel: dynamic mode uses uint8 weights.
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QUInt8,
                         nodes_to_exclude=exclude)
        return
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[calibration]
    # The histogram calibrators stack every batch's outputs: batches must be one size.
    batch = 16 if calibration == "minmax" else 1
    quantize_static(str(src), str(out), _reader(x, input_name, batch), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
                    calibrate_method=method, nodes_to_exclude=exclude,
                    extra_options={"DedicatedQDQPair": True})


def nncf_quantize(proto, x: np.ndarray, input_name: str, fmt: str):
    """NNCF's default post-training quantization of the float ONNX graph ``proto`` on
    calibration inputs ``x`` (one image per sample, all of them; fast bias correction, as
    NNCF does by default); returns the QDQ ``onnx.ModelProto``.

    Raises:
        ExportError: nncf is not installed (naming the extra), or its quantize fails.

    Example:
        >>> q = nncf_quantize(proto, x, "input", "onnx-int8")  # doctest: +SKIP
    """
    try:
        import nncf
    except ImportError:
        raise ExportError(f"{fmt} (engine=nncf) needs NNCF, which is not installed: "
                          f"{NNCF_INSTALL}.") from None
    nncf.set_log_level(logging.ERROR)
    chatter = io.StringIO()  # NNCF draws progress bars on stdout
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return nncf.quantize(proto, nncf.Dataset([{input_name: x[i:i + 1]}
                                                      for i in range(len(x))]),
                                 subset_size=len(x), fast_bias_correction=True)
    except Exception as e:
        raise ExportError(f"{fmt}: nncf.quantize failed: {first_line(e)}. Try engine=edgeproof "
                          "(ONNX Runtime's quantizer).") from None


def _nncf_note(n: int) -> dict:
    """The manifest's ``conversion.nncf``: what made the file."""
    return {"quantize": "nncf.quantize with its defaults (preset performance: symmetric "
                        "int8, fast bias correction) on the float graph onnx-fp32 makes",
            "calibration_images": n, "nncf": metadata.version("nncf")}


def convert_onnx_int8(model, ctx: ExportContext, *, fmt: str, opset: int = 17,
                      mode: str = "static", activations: str = "uint8",
                      calibration: str = "minmax", exclude_nodes="", engine: str = "edgeproof",
                      **options) -> Artifact:
    """ONNX int8: static QDQ (per-channel int8 weights, calibrated activations) or dynamic.

    Args:
        model: the Keras model.
        ctx: the export context; ``static`` needs ``ctx.calibration``.
        fmt: the format name (``onnx-int8``).
        opset: the ONNX opset of the float graph (QDQ per-channel needs >= 13).
        mode: ``static`` (calibrated, QDQ) or ``dynamic`` (weights only, activations
            quantized at run time).
        activations: ``uint8`` (U8S8, the default: fastest here) or ``int8`` (S8S8).
        calibration: ``minmax``, ``entropy`` or ``percentile`` (static mode).
        exclude_nodes: node names (a list, or comma-separated) left in float.
        engine: ``edgeproof`` (ONNX Runtime's quantizer, the options above) or ``nncf``
            (NNCF's default PTQ: static, its own calibration and preset).

    Example:
        >>> art = convert_onnx_int8(model, ctx, fmt="onnx-int8", mode="static")  # doctest: +SKIP
    """
    import onnx

    if mode == "static" and (ctx.calibration is None or len(ctx.calibration) == 0):
        raise ExportError(f"{fmt} (mode=static) needs calibration data: pass --calib DATA, or "
                          "--option mode=dynamic.")
    exclude = split_names(exclude_nodes)
    if engine == "nncf":
        return _nncf_int8(model, ctx, fmt, opset, mode, exclude, options)
    opts = {"mode": mode, **options}
    if mode == "static":
        opts.update(activations=activations, calibration=calibration)
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, opts)
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        onnx.save(proto, str(src))
        pre = _preprocess(src, Path(d) / "pre.onnx")
        x = model_input(ctx.calibration_float(), manifest) if mode == "static" else None
        try:
            _quantize(pre, out, x, manifest.input.name, mode, activations, calibration, exclude)
        except Exception as e:
            raise ExportError(f"{fmt} quantization failed: {first_line(e)}. Try --option "
                              "mode=dynamic, another opset, or tflite-int8.") from None
        qproto = onnx.load(str(out))
    if mode == "static":
        manifest.calibration = ctx.calibration_info
    if exclude:
        manifest.conversion["float_nodes"] = {"nodes": exclude,
                                              "why": "kept float on request (exclude_nodes)"}
        # ONNX Runtime's level-1 WeightBiasQuantization would quantize those nodes' float
        # weights (per-tensor) when the session is built; a runtime must switch it off.
        manifest.conversion["session_options"] = {
            "optimization.disable_specified_optimizers": "WeightBiasQuantization"}
    return onnx_artifact(qproto, manifest)


def _nncf_int8(model, ctx: ExportContext, fmt: str, opset: int, mode: str, exclude: list,
               options: dict) -> Artifact:
    """``onnx-int8`` by NNCF's default PTQ (``engine=nncf``)."""
    if mode != "static" or exclude:
        raise ExportError(f"{fmt}: engine=nncf is NNCF's default static PTQ; it takes neither "
                          "mode=dynamic nor exclude_nodes (use engine=edgeproof).")
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, {"engine": "nncf", **options})
    x = model_input(ctx.calibration_float(), manifest)
    qproto = nncf_quantize(proto, x, manifest.input.name, fmt)
    manifest.calibration = ctx.calibration_info
    manifest.conversion["nncf"] = _nncf_note(len(x))
    return onnx_artifact(qproto, manifest)


def node_sensitivity(model, ctx: ExportContext, opset: int = 17, limit: int = 16,
                     activations: str = "uint8") -> list[str]:
    """Node names of the float ONNX graph, the ones int8 damages most first
    (``node_losses`` without the numbers).

    Example:
        >>> node_sensitivity(model, ctx)[:1]  # doctest: +SKIP
        ['StatefulPartitionedCall/model/conv2d_3/Conv2D']
    """
    return [name for name, _ in node_losses(model, ctx, opset, limit, activations)]


def node_losses(model, ctx: ExportContext, opset: int = 17, limit: int = 16,
                activations: str = "uint8") -> list[tuple[str, float]]:
    """(node name, SQNR it loses in dB) of the float ONNX graph, the worst first.

    ONNX Runtime's ``qdq_loss_debug`` runs the float graph and its static QDQ version on
    ``limit`` calibration images with every intermediate tensor exposed and gives, per
    tensor, the signal-to-quantization-noise ratio (SQNR, dB) of the QDQ model against
    the float one. Errors accumulate along the graph, so a node's own damage is how much
    SQNR it loses: its input's SQNR minus its output's.

    Example:
        >>> node_losses(model, ctx)[:1]  # doctest: +SKIP
        [('StatefulPartitionedCall/model/conv2d_3/Conv2D', 11.52)]
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    proto, manifest = keras_to_onnx(model, ctx, "onnx-int8", opset, {})
    x = model_input(ctx.calibration_float()[:limit], manifest)
    with tempfile.TemporaryDirectory() as d:
        src, q = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        onnx.save(proto, str(src))
        pre = _preprocess(src, Path(d) / "pre.onnx")
        _quantize(pre, q, x, manifest.input.name, "static", activations, "minmax", [])
        acts = {}
        for name, path in (("float", pre), ("qdq", q)):
            aug = Path(d) / f"{name}-aug.onnx"
            dbg.modify_model_output_intermediate_tensors(str(path), str(aug))
            acts[name] = dbg.collect_activations(str(aug), _reader(x, manifest.input.name, 4))
        sqnr = {t: v.get("xmodel_err") for t, v in dbg.compute_activation_error(
            dbg.create_activation_matching(acts["qdq"], acts["float"])).items()}
        nodes = list(onnx.load(str(pre)).graph.node)
    # An input without a measurement (the graph's input) is quantized to 8 bits in the QDQ
    # graph: about 6.02 * 8 + 1.76 = 50 dB, the baseline its first node's loss counts from.
    clean = 50.0
    # The QDQ graph quantizes a Conv and its activation as one unit (Q/DQ after the
    # activation), so the loss shows on the activation; it is charged to the Conv (or
    # MatMul/Gemm) feeding it, the node whose weights int8 damaged.
    producer = {o: n for n in nodes for o in n.output}
    loss = {}
    for node in nodes:
        outs = [sqnr[o] for o in node.output if sqnr.get(o) is not None]
        if not outs:
            continue
        src = producer.get(node.input[0]) if node.input else None
        unit = src if node.op_type in _ACTIVATIONS and src is not None and \
            src.op_type in _WEIGHTED else node
        ins = [min(sqnr.get(i) or clean, clean) for i in unit.input if i]
        drop = min(ins, default=clean) - min(outs)
        loss[unit.name] = max(drop, loss.get(unit.name, drop))
    return sorted(((n, round(float(v), 2)) for n, v in loss.items()), key=lambda kv: -kv[1])


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
