"""ExecuTorch (``.pte``) from a PyTorch reference, lowered to XNNPACK and proved against
PyTorch on real images before it is written: ``executorch-fp32`` and ``executorch-int8``.

The path is ExecuTorch's documented one: the program (``export.torch_program``: a
contiguous example, a dynamic batch, a softmax after logits) →
``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`` →
``to_executorch().buffer``. ``executorch-int8`` quantizes first, by PT2E with the XNNPACK
quantizer (symmetric, per-channel weights), calibrated on the context's calibration
images (the set every int8 format calibrates on), then re-exports and lowers the same way.
PT2E folds BatchNorm into the convolutions itself, so edgeproof's exact rewrites (tf-keras
graph rewrites) are not offered here.

A dynamic batch is planned for ``max_batch`` images (ExecuTorch allocates every tensor at
its upper bound when the method loads), so the manifest records that bound and a runtime
given more images says so in one line.

What XNNPACK took is measured on the lowered edge program (``get_delegation_info`` of
``executorch.devtools.backend_debug``): the share of the graph's operators inside the
delegate and the ones left to ExecuTorch's portable kernels, by name and count, go in the
manifest's ``conversion.executorch.delegation``; ``min_delegated`` refuses a file whose
share is lower.

Example:
    >>> art = convert_executorch(ref, ctx, fmt="executorch-int8", mode="int8")  # doctest: +SKIP
    >>> art.manifest.conversion["executorch"]["delegation"]["share"]  # doctest: +SKIP
    0.9677
"""

from __future__ import annotations

from importlib import metadata

import numpy as np

from edgeproof.errors import ExportError, first_line
from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.export.torch_onnx import check_images
from edgeproof.export.torch_program import (FP32_TOLERANCE, INT8_FLOOR, check_against_torch,
                                            export_program, pt2e_quantized, quiet_torch, refusal,
                                            require_torch_reference)
from edgeproof.manifest import TensorInfo
from edgeproof.reference_torch import INSTALL

MAX_BATCH = 32  # the batch a dynamic .pte is planned for (bench's accuracy pass uses 32)
BACKEND = "XnnpackBackend"


def _executorch():
    try:
        with quiet_torch():  # torchao and torch log warnings while they import
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import \
                XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower
    except ImportError:
        raise ExportError(f"ExecuTorch formats need executorch, which is not installed: "
                          f"{INSTALL}.") from None
    return to_edge_transform_and_lower, XnnpackPartitioner


def _xnnpack_quantizer():
    with quiet_torch():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def delegation_record(edge) -> dict:
    """What the XNNPACK partitioner took of a lowered edge program, and what it left.

    Operators are the ``call_function`` nodes of the lowered graph (quantize / dequantize
    included, ``getitem`` not: it only unpacks a partition's outputs), counted by
    ``get_delegation_info``.

    Example:
        >>> delegation_record(edge)["not_delegated"]  # doctest: +SKIP
        {'aten_mean_dim': 1}
    """
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    by_op = {op: (b.delegated, b.non_delegated)
             for op, b in sorted(info.delegation_by_operator.items()) if op != "getitem"}
    inside = sum(d for d, _ in by_op.values())
    total = inside + sum(n for _, n in by_op.values())
    return {"backend": BACKEND, "partitions": int(info.num_delegated_subgraphs),
            "delegated_ops": inside, "ops": total,
            "share": round(inside / total, 4) if total else 0.0,
            "not_delegated": {op: n for op, (_, n) in by_op.items() if n},
            "delegated": {op: d for op, (d, _) in by_op.items() if d},
            "counted": "call_function nodes of the lowered edge program (get_delegation_info; "
                       "quantize/dequantize included, getitem not)"}


def left_out(record: dict) -> str:
    """The operators outside the delegate as one phrase.

    Example:
        >>> left_out({"not_delegated": {"aten_mean_dim": 1, "aten_erf_default": 2}})
        'aten_mean_dim x1, aten_erf_default x2'
        >>> left_out({"not_delegated": {}})
        'none'
    """
    return ", ".join(f"{op} x{n}" for op, n in record["not_delegated"].items()) or "none"


def _lower(program, fmt: str):
    to_edge_transform_and_lower, XnnpackPartitioner = _executorch()
    try:
        with quiet_torch():
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            record = delegation_record(edge)
            return edge.to_executorch().buffer, record
    except Exception as e:
        raise ExportError(f"{fmt}: ExecuTorch cannot lower the program to XNNPACK "
                          f"({first_line(e, 200)}).") from None


def _runner(data: bytes, prog):
    """``run(x) -> probabilities`` of the .pte bytes on the executorch runtime."""
    from executorch.runtime import Runtime

    with quiet_torch():
        method = Runtime.get().load_program(data).load_method("forward")

    def run(x: np.ndarray) -> np.ndarray:
        with quiet_torch():
            return method.execute([prog.tensor(x)])[0].float().numpy()
    return run


def _calibration(ctx: ExportContext, fmt: str) -> np.ndarray:
    if ctx.calibration is None or len(ctx.calibration) == 0:
        raise ExportError(f"{fmt} needs calibration data: pass --calib DATA (a dataset the "
                          "model was trained on; a few hundred images are drawn from its "
                          "train split).")
    return ctx.calibration_float()


def _versions() -> dict:
    out = {}
    for name in ("torch", "executorch", "torchao"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def convert_executorch(model, ctx: ExportContext, *, fmt: str, mode: str,
                       min_delegated: float | None = None, max_batch: int = MAX_BATCH,
                       **options) -> Artifact:
    """A ``.pte`` of a PyTorch reference (see the module docstring).

    Args:
        mode: ``fp32`` or ``int8`` (PT2E, XNNPACK quantizer, calibrated).
        min_delegated: refuse a file whose share of operators inside XNNPACK is lower
            (0 < share <= 1; None: never refuse).
        max_batch: the largest batch a dynamic-batch file takes (its memory plan).

    Raises:
        ExportError: not a PyTorch model; no calibration images (int8); the lowering
            fails; the file does not answer like PyTorch; the share is below
            ``min_delegated`` (one line each; nothing written).

    Example:
        >>> art = convert_executorch(ref, ctx, fmt="executorch-fp32", mode="fp32")  # doctest: +SKIP
        >>> art.suffix  # doctest: +SKIP
        '.pte'
    """
    ref = require_torch_reference(model, fmt)
    if min_delegated is not None and not 0 < min_delegated <= 1:
        raise ExportError(f"{fmt}: min_delegated is a share of operators in (0, 1]; got "
                          f"{min_delegated}.")
    calib = _calibration(ctx, fmt) if mode == "int8" else None
    x, what = check_images(ctx, ref)
    prog = export_program(ref, x, max_batch=max_batch)
    program = prog.program
    if mode == "int8":
        program = prog.reexport(pt2e_quantized(prog, _xnnpack_quantizer(), calib), x)
    data, record = _lower(program, fmt)
    if min_delegated is not None and record["share"] < min_delegated:
        raise ExportError(
            f"{fmt}: XNNPACK takes {100 * record['share']:.1f}% of the graph's operators "
            f"({record['delegated_ops']} of {record['ops']}), below min_delegated="
            f"{min_delegated}; left to portable kernels: {left_out(record)}. Not written.")
    check = check_against_torch(_runner(data, prog), ref, x, prog.batch, max_batch)
    why = refusal(check, integer=mode == "int8")
    if why:
        raise ExportError(f"{fmt}: the lowered .pte {why} ({prog.how}); not written.")
    opts = {**options, "max_batch": max_batch, "min_delegated": min_delegated}
    return Artifact(data, ".pte", _manifest(ref, ctx, fmt, opts, prog, record, check, what,
                                            mode))


def _manifest(ref, ctx, fmt, options, prog, record, check, what, mode):
    (h, w), c = ctx.preprocessing.size, ref.input_shape[2]  # a TorchScript file: crop=N
    manifest = base_manifest(ref, ctx, fmt, options)
    if mode != "int8":
        manifest.calibration = None
    manifest.input = TensorInfo("x", [prog.batch or -1, c, h, w], layout="NCHW")
    manifest.output.name = "probs"
    manifest.conversion["executorch"] = {
        "exported": prog.how, "not_taken": prog.not_taken, "dim_order": "contiguous",
        "max_batch": prog.batch or prog.max_batch, "checked_on": what, **check,
        **({"floor": INT8_FLOOR} if mode == "int8" else {"tolerance": FP32_TOLERANCE}),
        "delegation": record, "versions": _versions(),
        "why": "torch.export with a contiguous example (every input an ordinary contiguous "
               "tensor) and a dynamic batch, lowered to XNNPACK, proved against PyTorch at "
               "batch 1 and above"}
    if mode == "int8":
        manifest.conversion["quantization"] = {
            "method": "PT2E (prepare_pt2e / convert_pt2e)",
            "quantizer": "XNNPACKQuantizer, get_symmetric_quantization_config("
                         "is_per_channel=True): int8 activations per tensor, int8 weights "
                         "per channel",
            "batchnorm": "folded into the convolutions by PT2E itself (edgeproof's exact "
                         "rewrites are tf-keras graph rewrites, not offered here)"}
    return manifest
