"""ONNX files as they come (PyTorch, Keras 3 ``export(format="onnx")``, tf2onnx): what the
graph says about itself, and the file as a reference model.

``inspect_onnx`` reads the protobuf in Python only (no native loader): the inputs and
outputs, the layout (``[N, 3, H, W]`` is NCHW, as PyTorch writes; ``[N, H, W, 3]``
NHWC), the first ops from the input (constant scales and means: preprocessing
evidence) and the op that makes the output (a Softmax gives probabilities; PyTorch
classifiers end in Gemm: logits).

Example:
    >>> info = inspect_onnx("resnet18.onnx")  # doctest: +SKIP
    >>> info.layout, info.ends_in  # doctest: +SKIP
    ('NCHW', 'Gemm')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError, first_line
from edgeproof.manifest import sha256_file
from edgeproof.preprocess import softmax
from edgeproof.reference_model import Reference, evidence_from_ops

DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 10: "float16"}
_PASS = ("Transpose", "Cast", "Identity")
_AFFINE = ("Mul", "Div", "Sub", "Add")
_TAIL = ("Identity", "Reshape", "Squeeze", "Flatten", "Cast", "QuantizeLinear",
         "DequantizeLinear")
PROBABILITY_OPS = ("Softmax",)


@dataclass
class OnnxInfo:
    """What an ONNX graph says about itself (see the module docstring)."""

    inputs: list[str]
    outputs: list[str]
    input_dims: list[int]          # -1 where dynamic
    input_dtype: str | None
    output_dims: list[int]
    output_dtype: str | None
    layout: str                    # NCHW | NHWC | unknown
    leading: list[tuple[str, object]] = field(default_factory=list)
    ends_in: str | None = None
    opset: int | None = None
    producer: str = ""

    @property
    def logits(self) -> bool:
        """The output is not a probability op's: softmax must follow."""
        return self.ends_in not in PROBABILITY_OPS


def _dims(value) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1
            for d in value.type.tensor_type.shape.dim]


def _constants(graph, base_dir: str = "") -> dict:
    from onnx import TensorProto, numpy_helper

    found = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].HasField("t"):
            found[n.output[0]] = n.attribute[0].t
    out = {}
    for k, v in found.items():
        if len(v.dims) > 4 or (v.dims and v.dims[-1] > 4096):
            continue
        try:  # external data (model.onnx.data) is read from beside the file
            out[k] = numpy_helper.to_array(v, base_dir)
        except Exception:
            if v.data_location != TensorProto.EXTERNAL:
                raise
    return out


def external_data_files(model, base_dir: Path) -> list[Path]:
    """The files an ONNX graph keeps its weights in (``model.onnx.data``, as
    ``torch.onnx.export`` writes by default; every graph over 2 GB), beside it.

    Example:
        >>> import onnx
        >>> external_data_files(onnx.ModelProto(), Path("."))
        []
    """
    from onnx import TensorProto

    names = []
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc and loc not in names:
                names.append(loc)
    return [base_dir / n for n in names]


def check_external_data(p: Path, model=None) -> list[Path]:
    """The external data files of the ONNX file ``p`` (none for a self-contained one).

    Raises:
        ModelError: one of them is missing, named with the path looked for.

    Example:
        >>> check_external_data(Path("net.onnx"))  # doctest: +SKIP
        [PosixPath('net.onnx.data')]
    """
    import onnx

    model = model if model is not None else onnx.load(str(p), load_external_data=False)
    files = external_data_files(model, p.parent)
    for f in files:
        if not f.is_file():
            raise ModelError(f"{p.name} keeps its weights in {f.name}, which is not there (looked "
                             f"for {f}): copy it beside {p.name}.")
    return files


def _leading(graph, name: str, consts: dict, max_ops: int = 6):
    users: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    found = []
    while len(found) < max_ops:
        nxt = users.get(name, [])
        if len(nxt) != 1:
            break
        n = nxt[0]
        if n.op_type in _PASS:
            name = n.output[0]
            continue
        other = [i for i in n.input if i != name]
        const = consts.get(other[0]) if len(other) == 1 else None
        found.append((n.op_type, const if n.op_type in _AFFINE else None))
        if const is None or n.op_type not in _AFFINE:
            break
        name = n.output[0]
    return found


def _ends_in(graph) -> str | None:
    producer = {o: n for n in graph.node for o in n.output}
    node = producer.get(graph.output[0].name) if graph.output else None
    while node is not None and node.op_type in _TAIL and node.input:
        node = producer.get(node.input[0])
    return node.op_type if node is not None else None


def inspect_onnx(source) -> OnnxInfo:
    """Read an ONNX file (path) or ``ModelProto`` without running it.

    Raises:
        Exception: the protobuf parser's own error for a file that is not ONNX.

    Example:
        >>> inspect_onnx("resnet18.onnx").input_dims  # doctest: +SKIP
        [-1, 3, 224, 224]
    """
    import onnx

    model = source if isinstance(source, onnx.ModelProto) else \
        onnx.load(str(source), load_external_data=False)
    base_dir = "" if isinstance(source, onnx.ModelProto) else str(Path(source).parent)
    g = model.graph
    inits = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in inits]
    if not real or not g.output:
        raise ValueError("the graph has no inputs or no outputs")
    inp, out = real[0], g.output[0]
    out_dims = _dims(out)
    if -1 in out_dims[1:]:  # a class count left symbolic: ONNX's shape inference may know it
        try:
            inferred = onnx.shape_inference.infer_shapes(model).graph.output[0]
            out_dims = [d if d > 0 else i for d, i in zip(_dims(inferred), out_dims)] \
                if len(_dims(inferred)) == len(out_dims) else out_dims
        except Exception:  # inference is a bonus; the loader says what is missing
            pass
    dims = _dims(inp)
    layout = "unknown"
    if len(dims) == 4:
        layout = "NCHW" if dims[1] in (1, 3) and dims[3] not in (1, 3) else \
            "NHWC" if dims[3] in (1, 3) else "unknown"
    return OnnxInfo(
        inputs=[i.name for i in real], outputs=[o.name for o in g.output], input_dims=dims,
        input_dtype=DTYPES.get(inp.type.tensor_type.elem_type), output_dims=out_dims,
        output_dtype=DTYPES.get(out.type.tensor_type.elem_type), layout=layout,
        leading=_leading(g, inp.name, _constants(g, base_dir)), ends_in=_ends_in(g),
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        producer=f"{model.producer_name} {model.producer_version}".strip())


def _check(p: Path, info: OnnxInfo) -> tuple[int, int, int]:
    if len(info.inputs) != 1:
        raise ModelError(f"{p} is an ONNX graph with {len(info.inputs)} inputs "
                         f"({', '.join(info.inputs)}); edgeproof takes image classifiers with one "
                         "image input: export the model with a single input.")
    if len(info.outputs) != 1 or len(info.output_dims) != 2 or info.output_dims[1] < 1:
        raise ModelError(f"{p} has outputs {info.outputs} shaped {info.output_dims}; edgeproof "
                         "takes classifiers with one (N, classes) output.")
    if info.input_dtype != "float32":
        raise ModelError(f"{p} takes {info.input_dtype} input; a reference must be a float ONNX "
                         "file (a quantized one is an export: give its float original).")
    d = info.input_dims
    if info.layout == "unknown" or min(d[1:]) < 1:
        raise ModelError(f"{p} takes input {d}; edgeproof takes images of a fixed size with 1 or "
                         "3 channels, NCHW (PyTorch) or NHWC.")
    return (d[2], d[3], d[1]) if info.layout == "NCHW" else (d[1], d[2], d[3])


def load_onnx_reference(p: Path) -> Reference:
    """An ONNX float file as a ``Reference`` running on ONNX Runtime (CPU).

    Raises:
        ModelError: unreadable, two inputs, not float, not an image classifier.

    Example:
        >>> ref = load_onnx_reference(Path("resnet18.onnx"))  # doctest: +SKIP
        >>> ref.layout, ref.outputs_logits  # doctest: +SKIP
        ('NCHW', True)
    """
    try:
        info = inspect_onnx(p)
    except Exception as e:
        raise ModelError(f"{p} is not a readable ONNX file ({type(e).__name__}: "
                         f"{first_line(e, 120)}); it looks truncated: export or copy it "
                         "again.") from None
    h, w, c = _check(p, info)
    check_external_data(p)
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"ONNX Runtime cannot load {p}: {first_line(e, 200)}") from None
    name, nchw, logits = info.inputs[0], info.layout == "NCHW", info.logits
    batch = info.input_dims[0] if info.input_dims[0] > 0 else None

    def predict(x):
        n = len(x)
        if batch and n < batch:  # a fixed-batch graph: pad, answer for the real rows
            x = np.concatenate([x, np.repeat(x[-1:], batch - n, axis=0)])
        y = sess.run(None, {name: x.transpose(0, 3, 1, 2).copy() if nchw else x})[0][:n]
        return softmax(y) if logits else y

    return Reference(
        path=p, kind="onnx", name=p.stem, input_shape=(h, w, c), num_classes=info.output_dims[1],
        input_name=name, predict_fn=predict, layout=info.layout, outputs_logits=logits,
        output_why=f"its graph ends in {info.ends_in}" + (": logits" if logits else ""),
        evidence=evidence_from_ops(info.leading), has_gradients=False,
        version=info.producer or None, fingerprint=sha256_file(p),
        extras={"session": sess, "opset": info.opset, "batch": batch, "info": info})
