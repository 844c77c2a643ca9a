"""Run a float model and its integer artifact on the same images and compare every
intermediate tensor they share (``export.tensor_stats`` per tensor).

TFLite: both flatbuffers run in LiteRT's interpreter with
``experimental_preserve_all_tensors``, so every op's output can be read after ``invoke``.
The float and the integer conversion of one model name a tensor after the Keras layer
that made it, but not always with the same op list (``conv2d/Relu;conv2d/Conv2D1`` in
float, ``conv2d/Relu;conv2d/BiasAdd;…`` in int8), so tensors are matched by the layer
scope of their name's first part and their shape, in execution order.

ONNX (QDQ): the integer value of a float tensor ``T`` is the output of the
``QuantizeLinear`` that reads ``T`` (its scale and zero point are the node's inputs);
the float graph the artifact was quantized from has ``T`` under the same name. Both
graphs get the tensors as extra outputs (copies; the artifact is not changed).

Example:
    >>> cmp = compare_tflite(float_bytes, int8_bytes, x_float, x_int8)  # doctest: +SKIP
    >>> cmp.tensors[0].name, round(cmp.tensors[-1].sqnr_db, 1)  # doctest: +SKIP
    ('serving_default_input:0', 17.3)
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from edgeproof.export.tensor_stats import TensorAccumulator, TensorStats, weight_facts
from edgeproof.errors import ExportError
from edgeproof.quiet import quiet_native

BATCH = 16
_TFLITE_WEIGHTED = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3,
                    "TRANSPOSE_CONV": 0}          # op -> the weight's output-channel axis
_TFLITE_AFFINE = ("MUL", "ADD", "SUB")
_ONNX_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh",
                     "HardSwish", "Softmax")
_ONNX_WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")
_GENERIC = {"StatefulPartitionedCall", "sequential", "model", "functional", "serving_default"}
_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
              "uint16": (0, 65535)}


@dataclass
class Comparison:
    """Every matched tensor of a float model and its integer artifact, in execution order.

    Attributes:
        kind: ``tflite`` or ``onnx``.
        tensors: one ``TensorStats`` per matched tensor.
        images: how many images ran.
        unmatched: integer tensors with no float counterpart.
        agreement: top-1 agreement of the two models' outputs on those images.
    """

    kind: str
    tensors: list[TensorStats]
    images: int
    unmatched: list[str] = field(default_factory=list)
    agreement: float | None = None

    def by_name(self) -> dict[str, TensorStats]:
        return {t.name: t for t in self.tensors}


def layer_name(name: str) -> str:
    """The layer a tensor or node name belongs to: the last path part of its first
    ``;`` part's scope, generic wrappers skipped.

    Example:
        >>> layer_name("sequential/conv2d_1/Relu;sequential/conv2d_1/BiasAdd")
        'conv2d_1'
        >>> layer_name("/features/features.0/Conv_output_0"), layer_name("node_conv2d")
        ('features.0', 'node_conv2d')
    """
    first = name.split(";")[0].split(":")[0]
    parts = [p for p in first.split("/") if p and p not in _GENERIC]
    return parts[-2] if len(parts) >= 2 else (parts[0] if parts else name)


def _scope(name: str) -> str:
    first = name.split(";")[0].split(":")[0]
    return first.rsplit("/", 1)[0] if "/" in first else ""


def _run_batches(n: int, batch: int, run):
    for i in range(0, n, batch):
        yield i, min(batch, n - i), run(i)


def _pad(x: np.ndarray, batch: int) -> np.ndarray:
    return x if len(x) == batch else np.concatenate([x, np.repeat(x[-1:], batch - len(x), 0)])


# ---- TFLite ------------------------------------------------------------------------------

def _interpreter(data: bytes, batch: int):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Builtin kernels without XNNPACK: a delegated partition hides its tensors.
    with quiet_native():
        it = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp = it.get_input_details()[0]
    if batch != 1 and -1 in list(inp.get("shape_signature", [])):
        it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    return it, int(it.get_input_details()[0]["shape"][0])


def _activations(it) -> list[tuple[int, dict]]:
    """(op index, tensor detail) of every op output and the graph input, in order."""
    details = {d["index"]: d for d in it.get_tensor_details()}
    out = [(-1, details[it.get_input_details()[0]["index"]])]
    for op in it._get_ops_details():
        out += [(op["index"], details[i]) for i in op["outputs"] if i >= 0]
    return out


def _tflite_pairs(fit, qit) -> tuple[list[tuple[int, dict, dict]], list[str]]:
    """(op index, float detail, integer detail) of each matched tensor; unmatched names."""
    floats = _activations(fit)
    by_key = defaultdict(deque)
    for _, d in floats[1:]:
        by_key[(_scope(d["name"]), tuple(d["shape"][1:]))].append(d)
    f_out, q_out = fit.get_output_details()[0]["index"], qit.get_output_details()[0]["index"]
    pairs, unmatched = [], []
    for op, q in _activations(qit):
        if np.size(q["quantization_parameters"]["scales"]) != 1 or \
                np.dtype(q["dtype"]).name not in _INT_RANGE:
            continue
        if op == -1:
            f = floats[0][1]
        elif q["index"] == q_out:
            f = next(d for _, d in floats if d["index"] == f_out)
        else:
            queue = by_key.get((_scope(q["name"]), tuple(q["shape"][1:])))
            f = queue.popleft() if queue and _scope(q["name"]) else None
        if f is None:
            unmatched.append(q["name"])
        else:
            pairs.append((op, f, q))
    return pairs, unmatched


def _tflite_weight(qit, op) -> object:
    axis = _TFLITE_WEIGHTED.get(op["op_name"])
    if axis is None or len(op["inputs"]) < 2:
        return None
    d = next(t for t in qit.get_tensor_details() if t["index"] == op["inputs"][1])
    qp = d["quantization_parameters"]
    scales, zps = np.asarray(qp["scales"]), np.asarray(qp["zero_points"])
    if not scales.size:
        return None
    w = qit.get_tensor(d["index"]).astype(np.float64)
    if scales.size > 1:
        shape = [1] * w.ndim
        shape[qp["quantized_dimension"]] = -1
        w = (w - zps.reshape(shape)) * scales.reshape(shape)
    else:
        w = (w - zps.ravel()[0]) * scales[0]
    return weight_facts(d["name"], w, scales, axis)


def _tflite_graph_facts(qit, pairs, stats: list[TensorStats]) -> None:
    """Producer, its inputs (matched tensors), weights and per-channel affine of each."""
    ops = {op["index"]: op for op in qit._get_ops_details()}
    producer = {i: op for op in ops.values() for i in op["outputs"]}
    matched = {q["index"]: s.name for (_, _, q), s in zip(pairs, stats)}
    details = {d["index"]: d for d in qit.get_tensor_details()}

    def sources(i: int, depth: int = 0) -> list[str]:
        if i in matched or depth > 8 or i not in producer:
            return [matched[i]] if i in matched else []
        return [s for j in producer[i]["inputs"] if j >= 0 for s in sources(j, depth + 1)]

    for (op_i, _, q), s in zip(pairs, stats):
        if op_i == -1:
            s.producer, s.producer_type = "input", "INPUT"
            continue
        op = ops[op_i]
        s.producer, s.producer_type = layer_name(q["name"]), op["op_name"]
        acts = [j for j in op["inputs"] if j >= 0 and j in producer or j in matched]
        s.inputs = list(dict.fromkeys(x for j in acts for x in sources(j)))
        s.weight = _tflite_weight(qit, op)
        if op["op_name"] in _TFLITE_AFFINE:
            consts = [details[j] for j in op["inputs"] if j >= 0 and j not in producer and
                      j not in matched]
            s.affine_channels = max([int(np.prod(c["shape"])) for c in consts] or [0])


def compare_tflite(float_data: bytes, int_data: bytes, x_float: np.ndarray,
                   x_int: np.ndarray) -> Comparison:
    """Compare a float TFLite model with its integer artifact on the same images.

    Args:
        float_data, int_data: the two flatbuffers.
        x_float: the float model's input (N, ...); x_int: the artifact's (its dtype).

    Example:
        >>> cmp = compare_tflite(fp32.data, int8_bytes, x, prepare(images, manifest))  # doctest: +SKIP
    """
    fit, fb = _interpreter(float_data, BATCH)
    qit, qb = _interpreter(int_data, fb)
    batch = min(fb, qb)
    if fb != qb:
        fit, _ = _interpreter(float_data, batch)
        qit, _ = _interpreter(int_data, batch)
    pairs, unmatched = _tflite_pairs(fit, qit)
    if not pairs:
        raise ExportError("No tensor of the artifact matches one of the float model's: was it "
                          "converted from this reference?")
    accs = []
    for k, (_, f, q) in enumerate(pairs):
        qp = q["quantization_parameters"]
        lo, hi = _INT_RANGE[np.dtype(q["dtype"]).name]
        accs.append(TensorAccumulator(q["name"], float(qp["scales"][0]),
                                      int(qp["zero_points"][0]), lo, hi, -1, seed=k))
    agree = []
    fo, qo = fit.get_output_details()[0], qit.get_output_details()[0]
    for i in range(0, len(x_float), batch):
        n = min(batch, len(x_float) - i)
        fit.set_tensor(fit.get_input_details()[0]["index"], _pad(x_float[i:i + n], batch))
        qit.set_tensor(qit.get_input_details()[0]["index"], _pad(x_int[i:i + n], batch))
        fit.invoke()
        qit.invoke()
        for acc, (_, f, q) in zip(accs, pairs):
            acc.add(fit.get_tensor(f["index"])[:n], qit.get_tensor(q["index"])[:n])
        agree.append(fit.get_tensor(fo["index"])[:n].argmax(-1) ==
                     qit.get_tensor(qo["index"])[:n].argmax(-1))
    stats = [a.stats() for a in accs]
    for k, s in enumerate(stats):
        s.index = k
    _tflite_graph_facts(qit, pairs, stats)
    return Comparison("tflite", stats, len(x_float), unmatched,
                      float(np.concatenate(agree).mean()))


# ---- ONNX (QDQ) --------------------------------------------------------------------------

def _init_array(g, name: str):
    from onnx import numpy_helper

    for t in g.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in g.node:  # a Constant node (some exporters)
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


def _quantized_tensors(qproto) -> dict[str, tuple[str, float, int, str]]:
    """Float tensor name -> (QuantizeLinear output, scale, zero point, integer dtype)."""
    g = qproto.graph
    inits = {t.name for t in g.initializer}
    out = {}
    for n in g.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits or n.input[0] in out:
            continue
        scale = _init_array(g, n.input[1])
        zp = _init_array(g, n.input[2]) if len(n.input) > 2 and n.input[2] else \
            np.zeros((), np.uint8)
        if scale is None or scale.size != 1 or zp is None:
            continue
        out[n.input[0]] = (n.output[0], float(scale.ravel()[0]), int(zp.ravel()[0]),
                           np.dtype(zp.dtype).name)
    return out


def _with_outputs(proto, names: list[str]) -> bytes:
    from onnx import helper

    p = type(proto)()
    p.CopyFrom(proto)
    have = {o.name for o in p.graph.output}
    for name in names:
        if name not in have:
            p.graph.output.append(helper.make_empty_tensor_value_info(name))
    return p.SerializeToString()


def _session(data: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    # the artifact's weights must stay as stored (see onnx_quant: WeightBiasQuantization)
    so.add_session_config_entry("session.disable_specified_optimizers", "WeightBiasQuantization")
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _onnx_weight(qproto, node):
    axis = {"Conv": 0, "ConvTranspose": 1, "MatMul": 1}.get(node.op_type)
    if node.op_type == "Gemm":
        axis = 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    if axis is None or len(node.input) < 2:
        return None
    g = qproto.graph
    dq = next((n for n in g.node if n.output and n.output[0] == node.input[1] and
               n.op_type == "DequantizeLinear"), None)
    if dq is None:
        return None
    scale, zp = _init_array(g, dq.input[1]), _init_array(g, dq.input[2]) \
        if len(dq.input) > 2 and dq.input[2] else 0
    w = _init_array(g, dq.input[0])
    if w is None:  # Q -> DQ on a float weight (NNCF): the float weight itself
        q = next((n for n in g.node if n.output and n.output[0] == dq.input[0]), None)
        w = _init_array(g, q.input[0]) if q is not None else None
        if w is None:
            return None
        return weight_facts(node.input[1], w, scale, axis)
    if np.size(scale) > 1:
        shape = [1] * w.ndim
        ax = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        shape[ax] = -1
        deq = (w.astype(np.float64) - np.reshape(zp, shape)) * np.reshape(scale, shape)
    else:
        deq = (w.astype(np.float64) - np.ravel(zp)[0]) * np.ravel(scale)[0]
    return weight_facts(dq.input[0], deq, scale, axis)


def _onnx_graph_facts(fproto, qproto, stats: list[TensorStats]) -> None:
    g = fproto.graph
    producer = {o: n for n in g.node for o in n.output}
    matched = {s.name for s in stats}
    qnodes = {n.name: n for n in qproto.graph.node if n.name}

    def sources(t: str, depth: int = 0) -> list[str]:
        if t in matched or depth > 8 or t not in producer:
            return [t] if t in matched else []
        return [s for i in producer[t].input if i for s in sources(i, depth + 1)]

    for s in stats:
        node = producer.get(s.name)
        if node is None:
            s.producer, s.producer_type = "input", "INPUT"
            continue
        unit = node
        if node.op_type in _ONNX_ACTIVATIONS and node.input and node.input[0] in producer and \
                producer[node.input[0]].op_type in _ONNX_WEIGHTED:
            unit = producer[node.input[0]]  # Conv + Relu: one unit in the QDQ graph
        s.producer, s.producer_type = layer_name(unit.name or s.name), unit.op_type
        s.inputs = list(dict.fromkeys(x for i in unit.input if i for x in sources(i)))
        if unit.name in qnodes:
            s.weight = _onnx_weight(qproto, qnodes[unit.name])
        if unit.op_type == "BatchNormalization":
            s.affine_channels = int(np.size(_init_array(g, unit.input[1])))
        elif unit.op_type in ("Mul", "Add", "Sub"):
            consts = [_init_array(g, i) for i in unit.input]
            s.affine_channels = max([int(c.size) for c in consts if c is not None] or [0])


def compare_onnx(float_proto, int_proto, x: np.ndarray) -> Comparison:
    """Compare the float ONNX graph with its QDQ integer artifact on the same inputs.

    Args:
        float_proto, int_proto: ``onnx.ModelProto``s; the float one is the graph the
            artifact was quantized from (its tensors carry the same names).
        x: the float input both take (the artifact keeps float inputs).

    Example:
        >>> cmp = compare_onnx(float_proto, onnx.load("m-onnx-int8.onnx"), x)  # doctest: +SKIP
    """
    quantized = _quantized_tensors(int_proto)
    floats = {i.name for i in float_proto.graph.input} | \
        {o for n in float_proto.graph.node for o in n.output}
    order = [i.name for i in float_proto.graph.input] + \
        [o for n in float_proto.graph.node for o in n.output]
    names = [t for t in order if t in quantized]
    unmatched = [t for t in quantized if t not in floats]
    if not names:
        raise ExportError("No quantized tensor of the artifact has a float counterpart (is it a "
                          "QDQ graph quantized from this reference's ONNX export?).")
    fsess = _session(_with_outputs(float_proto, names))
    qsess = _session(_with_outputs(int_proto, [quantized[t][0] for t in names]))
    accs = []
    for k, t in enumerate(names):
        _, scale, zp, dtype = quantized[t]
        lo, hi = _INT_RANGE.get(dtype, (0, 255))
        accs.append(TensorAccumulator(t, scale, zp, lo, hi, 1, seed=k))
    fin, qin = fsess.get_inputs()[0], qsess.get_inputs()[0]
    fixed = fin.shape[0] if isinstance(fin.shape[0], int) else None
    batch = fixed or BATCH
    fout, qout = fsess.get_outputs()[0].name, qsess.get_outputs()[0].name
    agree = []
    for i in range(0, len(x), batch):
        n = min(batch, len(x) - i)
        xb = _pad(x[i:i + n], batch) if fixed else x[i:i + n]
        fv = dict(zip([fout] + names, fsess.run([fout] + names, {fin.name: xb})))
        qnames = [quantized[t][0] for t in names]
        qv = dict(zip([qout] + qnames, qsess.run([qout] + qnames, {qin.name: xb})))
        for acc, t in zip(accs, names):
            acc.add(fv[t][:n], qv[quantized[t][0]][:n])
        agree.append(fv[fout][:n].argmax(-1) == qv[qout][:n].argmax(-1))
    stats = [a.stats() for a in accs]
    for k, s in enumerate(stats):
        s.index = k
    _onnx_graph_facts(float_proto, int_proto, stats)
    return Comparison("onnx", stats, len(x), unmatched, float(np.concatenate(agree).mean()))
