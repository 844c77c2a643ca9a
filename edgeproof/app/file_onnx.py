"""An ``.onnx`` file as ``edgeproof info`` reads it: the protobuf in Python, never a session.

The graph is parsed without its external data (``onnx.load(load_external_data=False)``),
so a file whose weights sit in ``model.onnx.data`` reads whether or not that file is
there; each external file is listed with whether it exists. Inputs and outputs keep
their symbolic axes (``dim_param``: ``batch``, ``N``); ``core.reference_onnx.inspect_onnx``
reads the layout, the first ops (preprocessing evidence) and the op that makes the
output. The integer kind follows from the ops: QuantizeLinear / DequantizeLinear pairs
(QDQ, as ONNX Runtime's static quantizer writes) or QLinear* ops are integer, with the
compute ops left without a DequantizeLinear input counted as float (mixed);
DynamicQuantizeLinear / *Integer ops are dynamic-range; float16 tensors float16.

Example:
    >>> info = read_onnx(Path("resnet18.onnx"))  # doctest: +SKIP
    >>> info.inputs[0].shape_text(), info.inputs[0].layout  # doctest: +SKIP
    ('N?x3x224x224', 'NCHW')
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edgeproof.app.file_info import CompanionFile, FileInfo, TensorSummary, dims
from edgeproof.errors import ModelError, first_line
from edgeproof.reference_model import evidence_from_ops
from edgeproof.reference_onnx import DTYPES, external_data_files, inspect_onnx

_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm")
_DYNAMIC = ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul")
_FLOAT16 = 10


def _value(v) -> TensorSummary:
    t = v.type.tensor_type
    shape = t.shape.dim if t.HasField("shape") else []
    sizes = [d.dim_value if d.HasField("dim_value") else -1 for d in shape]
    # tf2onnx names the axes it cannot name "unk__49": unnamed, as far as a reader cares
    names = ["" if d.dim_param.startswith("unk__") else d.dim_param for d in shape]
    return TensorSummary(v.name, dims(sizes, names), DTYPES.get(t.elem_type, str(t.elem_type)))


def _op_name(n) -> str:
    return n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"


def integer_kind(graph) -> tuple[str, str]:
    """(kind, why) of an ONNX graph, from its ops and tensor types (module docstring).

    Example:
        >>> import onnx
        >>> integer_kind(onnx.GraphProto())
        ('unknown', 'no ops')
    """
    ops = Counter(n.op_type for n in graph.node)
    if not ops:
        return "unknown", "no ops"
    if any(ops[o] for o in _DYNAMIC):
        return "dynamic-range", ("weights int8, activations quantized at run time "
                                 f"({', '.join(o for o in _DYNAMIC if ops[o])})")
    qlinear = sum(n for o, n in ops.items() if o.startswith("QLinear"))
    if ops["DequantizeLinear"] or qlinear:
        made_by = {o: n.op_type for n in graph.node for o in n.output}
        compute = [n for n in graph.node if n.op_type in _COMPUTE]
        plain = [n for n in compute if made_by.get(n.input[0]) != "DequantizeLinear"]
        if plain:
            return "mixed", (f"{len(compute) - len(plain)} of {len(compute)} Conv/MatMul/Gemm "
                             "nodes read quantized (QDQ) inputs, the others float: "
                             + ", ".join(n.name or n.op_type for n in plain[:6])
                             + (" …" if len(plain) > 6 else ""))
        what = f"{qlinear} QLinear ops" if qlinear else \
            f"QDQ: {ops['QuantizeLinear']} QuantizeLinear, {ops['DequantizeLinear']} DequantizeLinear"
        return "full-integer", f"every compute node reads quantized inputs ({what})"
    if any(i.data_type == _FLOAT16 for i in graph.initializer) or any(
            v.type.tensor_type.elem_type == _FLOAT16 for v in graph.input):
        return "float16", "float16 weights (and activations where the graph says so)"
    return "float", "every tensor is float32"


def _companions(model, p: Path) -> list[CompanionFile]:
    out = []
    for f in external_data_files(model, p.parent):
        out.append(CompanionFile(str(f), "external data", f.is_file(),
                                 f.stat().st_size if f.is_file() else None))
    return out


def read_onnx(p: Path) -> FileInfo:
    """``p`` as a ``FileInfo`` (see the module docstring).

    Raises:
        ModelError: not an ONNX protobuf (truncated, another format), or no inputs or
            outputs.
    """
    import onnx

    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # the protobuf parser's own error
        raise ModelError(f"{p.name} is not a readable ONNX file ({type(e).__name__}: "
                         f"{first_line(e, 120)}): truncated, or another format.") from None
    g = model.graph
    files = _companions(model, p)
    inits = {i.name for i in g.initializer}
    inputs = [_value(v) for v in g.input if v.name not in inits]
    outputs = [_value(v) for v in g.output]
    if not inputs or not outputs:
        raise ModelError(f"{p.name} is an ONNX file whose graph has no inputs or no outputs.")
    # With its external data present, constants stored there (a mean, a scale) are read too.
    shown = inspect_onnx(p if all(f.exists for f in files) else model)
    kind, why = integer_kind(g)
    notes = [f"{Path(f.path).name} (its weights) is not beside it: ONNX Runtime cannot load "
             "the file without it" for f in files if not f.exists]
    if shown.logits:
        notes.append(f"the graph ends in {shown.ends_in}: logits (softmax applied after it)")
    details = {"opset": shown.opset, "ir_version": int(model.ir_version),
               "ends_in": shown.ends_in, "initializers": len(g.initializer),
               "external_data": bool(files)}
    return FileInfo(str(p), "onnx", f"ONNX (IR {model.ir_version}, opset {shown.opset})",
                    shown.producer or None, inputs, outputs, kind, why,
                    dict(Counter(_op_name(n) for n in g.node)), files=files, details=details,
                    notes=notes, evidence=evidence_from_ops(shown.leading))
