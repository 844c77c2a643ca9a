"""An ExecuTorch ``.pte`` as ``edgeproof info`` reads it: the program's own execution plan,
deserialized in Python (``bench.pte_graph.pte_facts``), never loaded or run.

What it shows: the input's planned sizes, dtype and **dim order** (a ``.pte`` lowered
from a channels_last example expects channels_last memory, and fed an ordinary
contiguous tensor it answers wrongly without an error: said in a note), the delegates
and their partitions, the operators left to ExecuTorch's own kernels (by the runtime's
names, ``aten::mean.out``), and those this installed runtime has no kernel for (its load
would fail with "missing operator"). The share of the graph's operators inside XNNPACK
and the ones left out (name and count) are measured at export and read from the
manifest (``conversion.executorch.delegation``); a file without one shows its delegate
calls and kernel calls instead, and says why.

Example:
    >>> info = read_pte(Path("net-executorch-int8.pte"))  # doctest: +SKIP
    >>> info.details["dim_order"], info.details["delegated_share"]  # doctest: +SKIP
    ('contiguous', 0.9688)
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.app.file_info import Delegation, FileInfo, TensorSummary, dims
from edgeproof.bench.pte_graph import PteFacts, pte_facts
from edgeproof.errors import EdgeproofError, ModelError, first_line

_QUANT = "quantize"  # quantize_per_tensor / dequantize_per_channel ...: a PT2E int8 graph


def _tensors(facts: PteFacts) -> tuple[TensorSummary, TensorSummary]:
    """The input and output; a dynamic batch is ``N`` (the program holds the upper bound
    its memory is planned for: ``details.max_batch``)."""
    dynamic = facts.input_dynamic
    sizes = [-1, *facts.input_sizes[1:]] if dynamic else facts.input_sizes
    out_sizes = [-1, *facts.output_sizes[1:]] if dynamic else facts.output_sizes
    inp = TensorSummary("x", dims(sizes), facts.input_dtype)
    if facts.dim_order != "contiguous" and inp.layout:
        inp.layout = f"{inp.layout} ({facts.dim_order} in memory)"
    return inp, TensorSummary("output", dims(out_sizes), facts.output_dtype)


def _ops(facts: PteFacts) -> dict:
    """The op histogram: the lowered graph's operators (manifest), else the program's
    calls (one per delegate partition, one per kernel)."""
    rec = facts.delegation
    if rec:
        merged = dict(rec.get("delegated", {}))
        for op, n in rec.get("not_delegated", {}).items():
            merged[op] = merged.get(op, 0) + n
        return dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))
    calls = {f"{k} (delegate call)": v for k, v in facts.delegates.items()}
    return {**calls, **facts.kernel_ops}


def integer_kind(facts: PteFacts) -> tuple[str, str]:
    """(kind, why) of a ``.pte``: int8 when its graph has PT2E's quantize/dequantize ops
    (the manifest's operator record, else the kernels outside the delegate).

    Example:
        >>> f = PteFacts("forward", [1, 3, 8, 8], "float32", [0, 1, 2, 3],
        ...              kernel_ops={"aten::mean.out": 1})
        >>> integer_kind(f)[0]
        'unknown'
    """
    rec = facts.delegation or {}
    names = list(rec.get("delegated", {})) + list(rec.get("not_delegated", {})) + \
        list(facts.kernel_ops)
    if facts.input_dtype in ("int8", "uint8"):
        return "full-integer", f"the input is {facts.input_dtype}"
    if any(_QUANT in n for n in names):
        floats = [n for n in rec.get("not_delegated", facts.kernel_ops) if _QUANT not in n]
        if floats:
            return "mixed", ("int8 by PT2E inside the XNNPACK partitions; outside them "
                             f"{', '.join(floats)} run in float on dequantized values")
        return "full-integer", ("int8 by PT2E: quantize/dequantize ops wrap the integer "
                                "partitions (float input and output)")
    if rec:
        return "float", "no quantize ops in the lowered graph: it computes in float32"
    return "unknown", ("no manifest, and the XNNPACK partitions' dtypes are not read: "
                       "a float input says nothing about what the partitions compute")


def _delegation(facts: PteFacts) -> Delegation:
    rec = facts.delegation
    partitions = sum(facts.delegates.values())
    if rec:
        note = (f"XNNPACK runs {100 * rec['share']:.1f}% of the graph's operators "
                f"({rec['delegated_ops']} of {rec['ops']}, measured at export)")
        return Delegation("XNNPACK", partitions, rec["ops"], dict(rec.get("not_delegated", {})),
                          note)
    calls = partitions + sum(facts.kernel_ops.values())
    return Delegation("XNNPACK", partitions, calls, dict(facts.kernel_ops),
                      "no manifest: counted as the program's calls (one per partition, one "
                      "per kernel); the share of operators is measured at export")


def _notes(facts: PteFacts) -> list[str]:
    notes = []
    if facts.dim_order != "contiguous":
        notes.append(f"the program expects its input in {facts.dim_order} memory (dim order "
                     f"{','.join(map(str, facts.input_dim_order))}): fed an ordinary "
                     "contiguous tensor it answers wrongly without an error; edgeproof's "
                     "executorch runtime lays the input out so")
    if facts.missing_ops:
        notes.append(f"this ExecuTorch runtime has no kernel for {', '.join(facts.missing_ops)}"
                     ": loading the file fails (missing operator)")
    if not facts.delegates:
        notes.append("no delegate: every operator runs on ExecuTorch's portable kernels")
    return notes


def read_pte(p: Path) -> FileInfo:
    """``p`` as a ``FileInfo`` (see the module docstring).

    Raises:
        ModelError: not an ExecuTorch program, or one that cannot be read.
    """
    with open(p, "rb") as fh:  # the identifier only: pte_facts reads the program itself
        head = fh.read(8)
    if len(head) < 8 or head[4:6] != b"ET":
        raise ModelError(f"{p.name} is not an ExecuTorch program (no ET identifier at byte 4): "
                         "truncated, or another format with a .pte name.")
    try:
        facts = pte_facts(p)
    except EdgeproofError as e:
        raise ModelError(f"{p.name}: {first_line(e, 200)}") from None
    inp, out = _tensors(facts)
    kind, why = integer_kind(facts)
    rec = facts.delegation or {}
    details = {"method": facts.method, "dim_order": facts.dim_order,
               "max_batch": facts.max_batch, "delegates": facts.delegates,
               "kernel_ops": facts.kernel_ops, "missing_ops": facts.missing_ops,
               "delegated_share": rec.get("share"), "not_delegated": rec.get("not_delegated")}
    return FileInfo(str(p), "pte", "ExecuTorch program (.pte)", "ExecuTorch", [inp], [out],
                    kind, why, _ops(facts), delegation=_delegation(facts), details=details,
                    notes=_notes(facts))
