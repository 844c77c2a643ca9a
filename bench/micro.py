"""What a ``.tflite`` file asks of a microcontroller, read from the flatbuffer alone.

No interpreter runs here (no TensorFlow, no TFLM): the graph's ops, its multiply-
accumulate count (the usual proxy for microcontroller time), the lifetime of every tensor,
and the tensor arena a TFLM-style greedy planner would lay out for them. This is the
**computed** arena: tensor buffers only (the arena's "head"), without TFLM's persistent
tail (its own bookkeeping, about 1–4 KB) or the scratch buffers kernels request, so it is
a lower bound. The **measured** arena comes from TFLM itself (``bench.tflm_arena``); the two are
never mixed up: every figure says which it is.

Lifetimes and placement follow current TFLM (``micro_allocation_info.cc``,
``greedy_memory_planner.cc``): graph inputs exist from t=0, op i runs at t=i+1, a tensor
lives from its first writer to its last reader, graph outputs to the end; constant,
variable and empty tensors are not planned; sizes round up to 16 bytes; the largest buffer
is placed first, each at the lowest offset free for its whole lifetime.

Example:
    >>> g = read_graph(open("m-int8.tflite", "rb").read())  # doctest: +SKIP
    >>> macs(g)["total"], plan(g).head_bytes  # doctest: +SKIP
    (479440, 16384)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from edgeproof.bench.micro_figures import GraphFigures
from edgeproof.embedded import MANIFEST_KEY, tflite_schema
from edgeproof.errors import ModelError, first_line

ALIGN = 16  # TFLM aligns every planned buffer to 16 bytes
_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8, "INT32": 4, "UINT32": 4,
          "INT16": 2, "UINT16": 2, "INT8": 1, "UINT8": 1, "BOOL": 1, "INT64": 8, "UINT64": 8,
          "COMPLEX64": 8, "COMPLEX128": 16}


def schema():
    """The TFLite flatbuffer schema module (ai-edge-litert's, else tflite-micro's).

    Example:
        >>> schema().BuiltinOperator.CONV_2D
        3
    """
    try:
        return tflite_schema()
    except ImportError:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

        return schema_py_generated


def _names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph: index, short name, shape, dtype, bytes, and what it is."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    constant: bool
    variable: bool


@dataclass(frozen=True)
class Op:
    """One operator: its position, builtin name (``CUSTOM:name`` for custom ops), tensors."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class Graph:
    """The main subgraph of a ``.tflite`` file, with the file's size and metadata bytes."""

    tensors: list[Tensor]
    ops: list[Op]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    file_bytes: int
    manifest_bytes: int = 0  # the embedded edgeproof manifest (flash a deployment may strip)
    subgraphs: int = 1

    def op_counts(self) -> dict[str, int]:
        """``{op name: count}`` in graph order.

        Example:
            >>> graph.op_counts()  # doctest: +SKIP
            {'CONV_2D': 2, 'MAX_POOL_2D': 1, 'RESHAPE': 1, 'FULLY_CONNECTED': 1, 'SOFTMAX': 1}
        """
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.name] = out.get(op.name, 0) + 1
        return out


def _short(name: bytes | None) -> str:
    # Converter names fuse the layers they came from: "seq/conv/Relu;seq/conv/BiasAdd;..."
    return (name or b"").decode(errors="replace").split(";")[0]


def read_graph(data: bytes) -> Graph:
    """Parse a TFLite flatbuffer's main subgraph.

    Raises:
        ModelError: ``data`` is not a TFLite flatbuffer.

    Example:
        >>> read_graph(b"nonsense")
        Traceback (most recent call last):
        ...
        edgeproof.errors.ModelError: Not a TFLite flatbuffer (bad header); memory analysis reads .tflite files.
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError("Not a TFLite flatbuffer (bad header); memory analysis reads .tflite files.")
    fb = schema()
    try:
        return _parse(fb, fb.Model.GetRootAs(data, 0), data)
    except Exception as e:  # a malformed buffer: one line, not a flatbuffers traceback
        raise ModelError(f"Cannot read the TFLite graph: {first_line(e)}") from None


def _parse(fb, m, data: bytes) -> Graph:
    ops_by_code, types = _names(fb.BuiltinOperator), _names(fb.TensorType)
    sg = m.Subgraphs(0)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        buf = m.Buffers(t.Buffer())
        const = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
        dtype = types.get(t.Type(), "?")
        nbytes = prod(max(d, 1) for d in shape) * _BYTES.get(dtype, 1)
        tensors.append(Tensor(i, _short(t.Name()), shape, dtype, nbytes, const,
                              bool(t.IsVariable())))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())  # codes < 127 sit in both
        name = ops_by_code.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            name = "CUSTOM:" + (oc.CustomCode() or b"?").decode(errors="replace")
        ins = tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else ()
        outs = tuple(int(v) for v in op.OutputsAsNumpy()) if op.OutputsLength() else ()
        ops.append(Op(i, name, ins, outs))
    return Graph(tensors, ops, tuple(int(v) for v in sg.InputsAsNumpy()),
                 tuple(int(v) for v in sg.OutputsAsNumpy()), len(data),
                 _manifest_bytes(m), m.SubgraphsLength())


def _manifest_bytes(m) -> int:
    for i in range(m.MetadataLength()):
        meta = m.Metadata(i)
        if (meta.Name() or b"").decode(errors="replace") == MANIFEST_KEY:
            buf = m.Buffers(meta.Buffer())
            return int(buf.Size()) if buf.Offset() > 1 else int(buf.DataLength())
    return 0


def _shape(g: Graph, t: int) -> tuple[int, ...]:
    return g.tensors[t].shape if t >= 0 else ()


def op_macs(g: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (0 for elementwise ops and pooling).

    CONV_2D: output elements x kh x kw x in_channels (filter ``[oc, kh, kw, ic]``);
    DEPTHWISE_CONV_2D: output elements x kh x kw; FULLY_CONNECTED: output elements x
    input features; TRANSPOSE_CONV: input elements x kh x kw x out_channels;
    BATCH_MATMUL: output elements x the shared dimension.

    Example:
        >>> [op_macs(graph, op) for op in graph.ops]  # doctest: +SKIP
        [221184, 0, 225792, 0, 320, 0]
    """
    out = prod(_shape(g, op.outputs[0])) if op.outputs else 0
    w = _shape(g, op.inputs[1]) if len(op.inputs) > 1 else ()
    if op.name == "CONV_2D" and len(w) == 4:
        return out * w[1] * w[2] * w[3]
    if op.name == "DEPTHWISE_CONV_2D" and len(w) == 4:
        return out * w[1] * w[2]
    if op.name == "FULLY_CONNECTED" and len(w) == 2:
        return out * w[1]
    if op.name == "TRANSPOSE_CONV" and len(w) == 4 and len(op.inputs) > 2:
        return prod(_shape(g, op.inputs[2])) * w[1] * w[2] * w[0]
    if op.name == "BATCH_MATMUL" and op.inputs:
        a = _shape(g, op.inputs[0])
        return out * (a[-1] if a else 0)
    return 0


def macs(g: Graph) -> dict[str, int]:
    """``{op name: MACs}`` of the ops that multiply, and their ``total`` (batch included).

    Example:
        >>> macs(graph)  # doctest: +SKIP
        {'CONV_2D': 472064, 'DEPTHWISE_CONV_2D': 7056, 'FULLY_CONNECTED': 320, 'total': 479440}
    """
    out: dict[str, int] = {}
    for op in g.ops:
        n = op_macs(g, op)
        if n:
            out[op.name] = out.get(op.name, 0) + n
    out["total"] = sum(out.values())
    return out


def lifetimes(g: Graph) -> dict[int, tuple[int, int]]:
    """``{tensor: (first, last)}`` time steps of the tensors TFLM plans in the arena.

    Time 0 is before the first op; op ``i`` runs at ``i + 1``.

    Example:
        >>> lifetimes(graph)  # doctest: +SKIP
        {0: (0, 1), 2: (1, 2), 5: (2, 3), 6: (3, 3)}
    """
    first: dict[int, int] = {t: 0 for t in g.inputs}
    last: dict[int, int] = {t: 0 for t in g.inputs}
    for step, op in enumerate(g.ops, start=1):
        for t in op.outputs:
            first.setdefault(t, step)
            last[t] = max(last.get(t, step), step)
        for t in op.inputs:
            if t >= 0:
                last[t] = step
    for t in g.outputs:
        last[t] = len(g.ops)
    planned = {}
    for t, f in first.items():
        ten = g.tensors[t]
        if not ten.constant and not ten.variable and ten.nbytes > 0:
            planned[t] = (f, last.get(t, f))
    return planned


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Plan:
    """A greedy arena plan: its size (``head_bytes``), each tensor's offset, and the op at
    which the most bytes are live, with those tensors."""

    head_bytes: int
    offsets: dict[int, int] = field(default_factory=dict)
    peak_op: int | None = None
    peak_live_bytes: int = 0
    live_at_peak: list[int] = field(default_factory=list)


def plan(g: Graph) -> Plan:
    """Lay the planned tensors out as TFLM's greedy planner does (computed, not measured).

    Example:
        >>> plan(graph).head_bytes  # doctest: +SKIP
        16384
    """
    life = lifetimes(g)
    order = sorted(life, key=lambda t: -_aligned(g.tensors[t].nbytes))  # stable: ties by index
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets = {}
    for t in order:
        size, (f, last) = _aligned(g.tensors[t].nbytes), life[t]
        offset = 0
        for o, s in sorted((o, s) for o, s, pf, pl in placed if not (pf > last or f > pl)):
            if o - offset >= size:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, f, last))
        offsets[t] = offset
    head = max((o + s for o, s, _, _ in placed), default=0)
    result = Plan(head, offsets)
    for step in range(1, len(g.ops) + 1):
        live = [t for t, (f, last) in life.items() if f <= step <= last]
        total = sum(_aligned(g.tensors[t].nbytes) for t in live)
        if total > result.peak_live_bytes:
            result.peak_op, result.peak_live_bytes = step - 1, total
            result.live_at_peak = sorted(live, key=lambda t: -g.tensors[t].nbytes)
    return result


def analyze(data: bytes, top: int = 3) -> GraphFigures:
    """The flatbuffer's figures: flash, ops, MACs, the computed arena and its peak (with
    the ``top`` largest tensors live there).

    Example:
        >>> analyze(open("m-int8.tflite", "rb").read()).peak["op"]  # doctest: +SKIP
        'CONV_2D'
    """
    g = read_graph(data)
    p = plan(g)
    peak = None
    if p.peak_op is not None:
        peak = {"op_index": p.peak_op, "op": g.ops[p.peak_op].name,
                "live_bytes": p.peak_live_bytes,
                "largest": [{"name": g.tensors[t].name, "shape": list(g.tensors[t].shape),
                             "dtype": g.tensors[t].dtype.lower(), "bytes": g.tensors[t].nbytes}
                            for t in p.live_at_peak[:top]]}
    return GraphFigures(flash_bytes=g.file_bytes, manifest_bytes=g.manifest_bytes,
                        ops=g.op_counts(), macs=macs(g)["total"],
                        computed_arena_bytes=p.head_bytes, peak=peak, subgraphs=g.subgraphs)
