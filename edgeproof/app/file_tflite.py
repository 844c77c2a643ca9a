"""A ``.tflite`` file as ``edgeproof info`` reads it: the flatbuffer, then LiteRT loading it
(never invoking it) to see what its XNNPACK delegate takes.

The flatbuffer is read in Python (``bench.micro.read_graph`` for the ops and tensor
dtypes; the schema for each input's and output's shape signature and quantization). The
integer kind follows from the dtypes of what the ops compute: int8 (or int16) activations
everywhere is full-integer, some float ops among them mixed, float activations with int8
weights the kernels read directly dynamic-range, float16 weights dequantized at load
float16, else float. The delegation is the LiteRT runtime's own evidence
(``bench.runtimes.litert``: the DELEGATE nodes ``allocate_tensors`` appends, and the ops
left on builtin kernels). Class names come from the manifest, else from a labels file
packed into the flatbuffer's zip tail (TFLite Support metadata, as published classifiers
carry).

Example:
    >>> info = read_tflite(Path("mobilenet_v1_uint8.tflite"))  # doctest: +SKIP
    >>> info.inputs[0].quantization, info.integer_kind  # doctest: +SKIP
    ({'scale': 0.0078125, 'zero_point': 128}, 'full-integer')
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

from edgeproof.app.file_info import Delegation, FileInfo, TensorSummary, dims
from edgeproof.bench.derive import derive_manifest
from edgeproof.bench.micro import Graph, read_graph
from edgeproof.bench.runtimes.litert import LiteRTRuntime
from edgeproof.embedded import MANIFEST_KEY, tflite_schema
from edgeproof.errors import EdgeproofError, ModelError, first_line
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo

_INTEGER = {"INT8", "UINT8", "INT16"}
_FLOAT = {"FLOAT32", "FLOAT16"}
_EDGES = ("QUANTIZE", "DEQUANTIZE")
_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
             "BATCH_MATMUL", "CONV_3D")
_CONVERTERS = {"MLIR Converted.": "TensorFlow Lite converter (MLIR)",
               "TOCO Converted.": "TensorFlow Lite converter (TOCO)"}


def _tensor(fb_types: dict, t) -> TensorSummary:
    shape = [int(v) for v in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() \
        else [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else []
    dtype = fb_types.get(t.Type(), "?").lower()
    q = t.Quantization()
    quant = None
    if q is not None and q.ScaleLength() and dtype not in ("float32", "float16"):
        scales, zeros = q.ScaleAsNumpy(), q.ZeroPointAsNumpy()
        quant = {"scale": float(scales[0]), "zero_point": int(zeros[0]) if len(zeros) else 0}
        if len(scales) > 1:
            quant["channels"] = int(len(scales))
    return TensorSummary((t.Name() or b"").decode(errors="replace"), dims(shape), dtype,
                         quantization=quant)


def integer_kind(g: Graph) -> tuple[str, str]:
    """(kind, why) of a TFLite graph, from what its ops compute (see the module docstring).

    Example:
        >>> integer_kind(read_graph(open("m-int8.tflite", "rb").read()))  # doctest: +SKIP
        ('full-integer', 'all 5 ops compute in int8')
    """
    t = g.tensors
    computed = [(op, t[op.outputs[0]].dtype) for op in g.ops
                if op.outputs and op.outputs[0] >= 0 and op.name not in _EDGES]
    ints = [op for op, d in computed if d in _INTEGER]
    floats = [op for op, d in computed if d in _FLOAT]
    if ints and not floats:
        wide = "int16" if any(d == "INT16" for _, d in computed) else "int8"
        edges = [op.name for op in g.ops if op.name in _EDGES]
        return ("int16x8" if wide == "int16" else "full-integer",
                f"all {len(ints)} ops compute in {wide}" +
                (f" ({len(edges)} QUANTIZE/DEQUANTIZE at the float edges)" if edges else ""))
    if ints and floats:
        left = Counter(op.name for op in floats)
        return "mixed", (f"{len(ints)} ops compute in integer, {len(floats)} in float: "
                         + ", ".join(f"{k} {v}" for k, v in left.most_common()))
    const_of = {op.index: [t[i] for i in op.inputs if i >= 0 and t[i].constant] for op in g.ops}
    if any(c.dtype == "INT8" for op in g.ops if op.name in _WEIGHTED for c in const_of[op.index]):
        return "dynamic-range", ("float activations, int8 weights read by the kernels directly "
                                 "(activations quantized on the fly)")
    if any(c.dtype == "FLOAT16" for op in g.ops if op.name == "DEQUANTIZE"
           for c in const_of[op.index]):
        return "float16", "float16 weights, dequantized to float32 when loaded"
    if any(c.dtype == "INT8" for op in g.ops if op.name == "DEQUANTIZE"
           for c in const_of[op.index]):
        return "float", "int8 weights dequantized to float32 when loaded (weight-only)"
    return ("float", "every op computes in float32") if floats else ("unknown", "no ops")


def _metadata(m) -> dict[str, bytes]:
    out = {}
    for i in range(m.MetadataLength()):
        meta = m.Metadata(i)
        name = (meta.Name() or b"").decode(errors="replace")
        buf = m.Buffers(meta.Buffer())
        out[name] = b"" if buf is None or buf.Offset() > 1 else buf.DataAsNumpy().tobytes() \
            if buf.DataLength() else b""
    return out


def packed_labels(data: bytes) -> list[str] | None:
    """Class names from a labels file packed into the flatbuffer's zip tail (TFLite Support
    metadata), or None.

    Example:
        >>> packed_labels(b"TFL3 no zip here") is None
        True
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".txt")]
            if not names:
                return None
            text = z.read(sorted(names, key=lambda n: "label" not in n.lower())[0])
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    labels = [ln.strip() for ln in text.decode(errors="replace").splitlines() if ln.strip()]
    return labels or None


def _placeholder_manifest(inp: TensorSummary, out: TensorSummary) -> Manifest:
    """What LiteRTRuntime needs to open the file (it reads no field of it to load)."""
    return Manifest(format="tflite", class_names=[], preprocessing=Preprocessing(size=[1, 1]),
                    input=TensorInfo(inp.name, [-1], inp.dtype or "float32"),
                    output=TensorInfo(out.name, [-1], out.dtype or "float32"))


def xnnpack_delegation(p: Path, manifest: Manifest) -> Delegation:
    """Load ``p`` with LiteRT and its default XNNPACK delegate (``allocate_tensors``, no
    ``invoke``): its partitions and the ops it leaves out, or a note saying why not.

    Example:
        >>> xnnpack_delegation(Path("m-int8.tflite"), manifest).partitions  # doctest: +SKIP
        1
    """
    try:
        rt = LiteRTRuntime(p, manifest, threads=1, verify=False)
        rt.load()
    except ImportError:
        return Delegation("XNNPACK", note="ai-edge-litert is not installed: no delegation figures")
    except EdgeproofError as e:
        return Delegation("XNNPACK", note=f"LiteRT cannot load it: {first_line(e, 200)}")
    d = rt.details
    rt.close()
    note = d.get("note") or ("every op runs inside the delegate" if d["delegate_nodes"] and
                             not d["builtin_ops"] else None)
    return Delegation("XNNPACK", d["delegate_nodes"], d["ops"], dict(d["builtin_ops"]), note)


def _graph_evidence(p: Path) -> tuple | None:
    """(scale, offset, why) when the input's quantization range or a first MUL tells
    (``bench.derive``), else None."""
    try:
        m = derive_manifest(p)
    except EdgeproofError:
        return None
    how = m.source.get("preprocessing", "")
    if not how.startswith("detected: "):
        return None
    return m.preprocessing.scale, m.preprocessing.offset, how[len("detected: "):]


def read_tflite(p: Path) -> FileInfo:
    """``p`` as a ``FileInfo`` (the file's own facts; see the module docstring).

    Raises:
        ModelError: not a TFLite flatbuffer, or one that cannot be parsed.
    """
    data = p.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{p.name} is not a TFLite flatbuffer (no TFL3 identifier at byte 4): "
                         "truncated, or another format with a .tflite name.")
    try:
        g = read_graph(data)
    except ModelError as e:
        raise ModelError(f"{p.name}: {e}; the file looks truncated: copy or export it "
                         "again.") from None
    fb = tflite_schema()
    m = fb.Model.GetRootAs(data, 0)
    sg = m.Subgraphs(0)
    types = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    inputs = [_tensor(types, sg.Tensors(int(i))) for i in sg.InputsAsNumpy()]
    outputs = [_tensor(types, sg.Tensors(int(i))) for i in sg.OutputsAsNumpy()]
    kind, why = integer_kind(g)
    meta = _metadata(m)
    desc = (m.Description() or b"").decode(errors="replace")
    runtime = meta.get("min_runtime_version", b"").rstrip(b"\0").decode(errors="replace")
    details = {"schema_version": int(m.Version()), "subgraphs": g.subgraphs,
               "signatures": [(m.SignatureDefs(i).SignatureKey() or b"").decode()
                              for i in range(m.SignatureDefsLength())],
               "metadata": sorted(k for k in meta if k != MANIFEST_KEY),
               "min_runtime_version": runtime or None}
    info = FileInfo(str(p), "tflite", f"TFLite flatbuffer (schema {m.Version()})",
                    _CONVERTERS.get(desc, desc or None), inputs, outputs, kind, why,
                    g.op_counts(), class_names=packed_labels(data), details=details,
                    evidence=_graph_evidence(p))
    if inputs and outputs:
        info.delegation = xnnpack_delegation(p, _placeholder_manifest(inputs[0], outputs[0]))
    return info
