"""TFLite from a PyTorch reference through litert-torch (Google's PyTorch → LiteRT
converter), proved against PyTorch on real images before it is written:
``tflite-fp32``, ``tflite-dynamic`` and ``tflite-int8`` of a ``.pt2`` / TorchScript model.

The Keras formats of the same names go through TensorFlow's converter
(``export.tflite``); ``convert_tflite`` sends a PyTorch reference here.

NCHW: the program (``export.torch_program``) takes NHWC images and permutes them once at
its input, as ``litert_torch.to_channel_last_io`` does; litert-torch's layout pass then
folds that permute into NHWC convolutions, so the graph is not a chain of transposes
around every op (a graph fed NCHW keeps a TRANSPOSE at the input as well). The manifest's
``conversion.litert_torch.transposes`` counts the TRANSPOSE ops left in the file.

Quantization is litert-torch's PT2E quantizer (``PT2EQuantizer``,
``get_symmetric_quantization_config(is_per_channel=True)``): ``tflite-dynamic`` with
``is_dynamic=True`` (int8 weights, activations quantized at run time); ``tflite-int8``
static, calibrated on the context's calibration images (the set every int8 format
calibrates on); its input is int8, as PT2E's quantized boundary makes it, and its output
the float probabilities of the softmax appended after logits (``io_dtypes`` says which).
PT2E folds BatchNorm itself; edgeproof's exact rewrites are tf-keras graph rewrites.

Example:
    >>> data, manifest = litert_torch_tflite(ref, ctx, fmt="tflite-int8", mode="int8")  # doctest: +SKIP
    >>> manifest.conversion["litert_torch"]["transposes"]  # doctest: +SKIP
    1
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from importlib import metadata

import numpy as np

from edgeproof.errors import ExportError, first_line
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.export.torch_onnx import check_images
from edgeproof.export.torch_program import (FP32_TOLERANCE, INT8_FLOOR, check_against_torch,
                                            export_program, pt2e_quantized, quiet_torch, refusal,
                                            require_torch_reference)
from edgeproof.manifest import TensorInfo
from edgeproof.options import split_names
from edgeproof.preprocess import dequantize, quantize
from edgeproof.quiet import quiet_native
from edgeproof.reference_torch import INSTALL

MODES = ("fp32", "dynamic", "int8")


@contextlib.contextmanager
def _no_progress():
    """litert-torch prints a progress tree on stdout unless its variable says no."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved


def _litert_torch():
    try:
        with quiet_torch(), _no_progress():
            import litert_torch
    except ImportError:
        raise ExportError(f"TFLite from a PyTorch model needs litert-torch, which is not "
                          f"installed: {INSTALL}.") from None
    return litert_torch


def _refuse_options(fmt: str, mode: str, io_type: str, float_layers) -> None:
    if mode not in MODES:
        raise ExportError(f"{fmt} from a PyTorch model is not made: litert-torch makes "
                          "tflite-fp32, tflite-dynamic and tflite-int8 (onnx-fp16 keeps "
                          "float16 weights).")
    if split_names(float_layers):
        raise ExportError(f"{fmt}: float_layers names TFLite converter tensors of a Keras "
                          "model; a PyTorch model's int8 file comes from PT2E, which keeps "
                          "no such list.")
    if mode == "int8" and io_type != "int8":
        raise ExportError(f"{fmt}: a PyTorch model's int8 file takes int8 input (PT2E's "
                          f"quantized boundary); io_type={io_type} is not made: use io_type=int8, "
                          "or executorch-int8 / onnx-int8 for float input.")


def _quantizer(mode: str):
    with quiet_torch():
        from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                          get_symmetric_quantization_config)
    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=mode == "dynamic")
    return PT2EQuantizer().set_global(config)


def _convert(prog, x: np.ndarray, mode: str, calib: np.ndarray | None, fmt: str) -> bytes:
    litert_torch = _litert_torch()
    from litert_torch.quantize.quant_config import QuantConfig

    try:
        module, kw = prog.program.module(), {}
        if mode != "fp32":
            quantizer = _quantizer(mode)
            module = pt2e_quantized(prog, quantizer, x if calib is None else calib, fold=False)
            kw["quant_config"] = QuantConfig(pt2e_quantizer=quantizer)
        with quiet_torch(), _no_progress():
            model = litert_torch.convert(module, (prog.example(x),),
                                         dynamic_shapes=prog.dynamic_shapes(), **kw)
            return bytes(model.model_content())
    except Exception as e:
        raise ExportError(f"{fmt}: litert-torch cannot convert the program "
                          f"({first_line(e, 200)}).") from None


def _program_and_file(ref, x: np.ndarray, mode: str, calib, fmt: str):
    """The program and its flatbuffer: a dynamic batch where litert-torch converts one,
    else a fixed batch (the reference's, or 1: what a device feeds). litert-torch's
    lowering to TFLite needs concrete shapes wherever the graph reshapes by a traced size
    (``Flatten`` after a pool does), so a dynamic batch fails there; the file then says
    its batch is fixed and why, in ``not_taken``."""
    prog = export_program(ref, x, layout="NHWC")
    try:
        return prog, _convert(prog, x, mode, calib, fmt)
    except ExportError as e:
        if prog.batch is not None:
            raise
        fixed = export_program(ref, x, layout="NHWC", batches=(ref.extras.get("batch") or 1,))
        fixed.not_taken = [*prog.not_taken, {"exported": "dynamic batch (litert-torch)",
                                             "error": str(e)}]
        return fixed, _convert(fixed, x, mode, calib, fmt)


def _interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native():
        return Interpreter(model_content=data)


def _runner(data: bytes):
    """``run(x) -> probabilities`` of the flatbuffer on LiteRT (XNNPACK, as bench runs it)."""
    interp = _interpreter(data)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    shape = {"batch": None}

    def run(x: np.ndarray) -> np.ndarray:
        if shape["batch"] != len(x):
            interp.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
            with quiet_native():
                interp.allocate_tensors()
            shape["batch"] = len(x)
        feed = x.astype(np.float32)
        scale, zero = inp["quantization"]
        if np.dtype(inp["dtype"]) != np.float32:
            feed = quantize(feed, scale, zero, np.dtype(inp["dtype"]).name)
        interp.set_tensor(inp["index"], np.ascontiguousarray(feed))
        interp.invoke()
        y = interp.get_tensor(out["index"])
        scale, zero = out["quantization"]
        return dequantize(y, scale, zero) if np.dtype(out["dtype"]) != np.float32 else y
    return run


def graph_ops(data: bytes) -> tuple[dict[str, int], list[str]]:
    """The flatbuffer's operators by name and count, and its input and output dtypes.

    Example:
        >>> graph_ops(data)  # doctest: +SKIP
        ({'CONV_2D': 3, 'TRANSPOSE': 1, ...}, ['int8', 'float32'])
    """
    interp = _interpreter(data)
    ops = Counter(op["op_name"] for op in interp._get_ops_details())
    io = [np.dtype(d[0]["dtype"]).name for d in (interp.get_input_details(),
                                                 interp.get_output_details())]
    return dict(sorted(ops.items())), io


def litert_torch_tflite(model, ctx: ExportContext, *, fmt: str, mode: str, io_type: str = "int8",
                        float_layers="", **options):
    """The ``.tflite`` of a PyTorch reference and its manifest (not yet embedded), as
    ``convert_tflite`` hands on (see the module docstring).

    Args:
        mode: ``fp32``, ``dynamic`` or ``int8`` (others: an ExportError saying which exist).
        io_type: ``int8`` only (int8 mode).
        float_layers: not taken (PT2E keeps no such list): an ExportError when given.

    Raises:
        ExportError: an option or mode litert-torch does not make; no calibration images
            (int8); the conversion fails; the file does not answer like PyTorch.

    Example:
        >>> data, manifest = litert_torch_tflite(ref, ctx, fmt="tflite-fp32", mode="fp32")  # doctest: +SKIP
    """
    ref = require_torch_reference(model, fmt)
    _refuse_options(fmt, mode, io_type, float_layers)
    if mode == "int8" and (ctx.calibration is None or len(ctx.calibration) == 0):
        raise ExportError(f"{fmt} needs calibration data: pass --calib DATA (a dataset the "
                          "model was trained on; a few hundred images are drawn from its "
                          "train split).")
    x, what = check_images(ctx, ref)
    prog, data = _program_and_file(ref, x, mode, ctx.calibration_float() if mode == "int8"
                                   else None, fmt)
    check = check_against_torch(_runner(data), ref, x, prog.batch)
    why = refusal(check, integer=mode != "fp32")
    if why:
        raise ExportError(f"{fmt}: litert-torch's file {why} ({prog.how}); not written.")
    opts = {**options, **({"io_type": io_type} if mode == "int8" else {})}
    manifest = base_manifest(ref, ctx, fmt, opts)
    if mode != "int8":
        manifest.calibration = None
    (h, w), c = ctx.preprocessing.size, ref.input_shape[2]
    manifest.input = TensorInfo("x", [prog.batch or -1, h, w, c], layout="NHWC")
    ops, io = graph_ops(data)
    manifest.conversion["litert_torch"] = {
        "exported": prog.how, "not_taken": prog.not_taken, "input_layout": "NHWC",
        "transposes": ops.get("TRANSPOSE", 0), "ops": ops, "io_dtypes": io,
        "checked_on": what, **check,
        **({"tolerance": FP32_TOLERANCE} if mode == "fp32" else {"floor": INT8_FLOOR}),
        "versions": _versions(),
        "why": "litert_torch.convert of the program re-exported with a contiguous example and "
               f"a {prog.how}, NHWC at its input (one permute, folded into the "
               "convolutions), proved against PyTorch"
               + (" at batch 1 and above" if prog.batch is None else "")}
    if mode != "fp32":
        manifest.conversion["quantization"] = {
            "method": "PT2E (prepare_pt2e / convert_pt2e(fold_quantize=False)) then "
                      "litert_torch.convert(quant_config=QuantConfig(pt2e_quantizer=...))",
            "quantizer": "litert_torch PT2EQuantizer, get_symmetric_quantization_config("
                         f"is_per_channel=True, is_dynamic={mode == 'dynamic'})",
            "batchnorm": "folded by PT2E itself (edgeproof's exact rewrites are tf-keras "
                         "graph rewrites, not offered here)"}
    return data, manifest


def _versions() -> dict:
    out = {}
    for name in ("torch", "litert-torch", "torchao"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
