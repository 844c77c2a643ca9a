"""Manifests for artifacts made elsewhere: a ``.tflite``, ``.onnx``, Keras, PyTorch or
ExecuTorch (``.pte``) file without the manifest edgeproof writes.

Latency needs no manifest: the input's shape and dtype come from the file itself (the
TFLite flatbuffer, the ONNX protobuf and the ExecuTorch plan are read in Python, before
any native loader).
Accuracy and parity need the preprocessing too, which is found out, in order:

- ``--preprocess`` given by the user;
- the file says so: a Keras model (tf-keras 2 or Keras 3) whose first layer is
  ``Rescaling(1/255)`` (or an adapted ``Normalization``), a SavedModel or ONNX graph whose
  first op multiplies the input by a constant below 0.1 (Keras' Rescaling) or subtracts a
  mean within [0, 1] (inputs in [0, 1]), or an integer input whose quantization range
  spans 0–255 (raw pixels), 0–1 (1/255) or -1–1 (1/127.5 - 1). A float TFLite file
  usually cannot tell: the converter folds a scalar Rescaling into the first convolution;
- otherwise it is unknown, and ``edgeproof bench`` measures latency only (with a
  dataset it stops with a one-line error asking for ``--preprocess``).

An ONNX file laid out NCHW (PyTorch) gets ``layout: NCHW`` (``prepare`` transposes), and
one that ends in logits (no Softmax last: PyTorch classifiers end in Gemm) gets
``conversion.logits``, so every runtime applies softmax after it. Keras and SavedModel
files load through the core loader (``edgeproof.reference``), which does the same for them.

Example:
    >>> m = artifact_manifest("someone_elses.tflite")  # doctest: +SKIP
    >>> m.source["preprocessing"]  # doctest: +SKIP
    'detected: the first op multiplies the input by 0.00392157: it takes raw 0-255 pixels'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.bench.pte_graph import pte_facts
from edgeproof.embedded import tflite_schema
from edgeproof.errors import ModelError, RuntimeFailure, first_line
from edgeproof.keras_loader import RAW_PIXEL_SCALE
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo, find_manifest
from edgeproof.reference import UNKNOWN_PREPROCESSING, load_reference, reference_preprocessing
from edgeproof.reference_model import evidence_from_ops
from edgeproof.reference_onnx import inspect_onnx
from edgeproof.reference_torch import TORCH_KINDS, TORCH_SUFFIXES

UNKNOWN = UNKNOWN_PREPROCESSING
_TFLITE_TYPES = {0: "float32", 1: "float16", 3: "uint8", 7: "int16", 9: "int8"}
_DERIVED: dict[tuple[str, int], Manifest] = {}  # Keras / SavedModel manifests, by path and mtime
_RAW = "it takes raw 0-255 pixels"


def artifact_manifest(path, preprocess: dict | None = None) -> Manifest:
    """The manifest beside or inside ``path``; else one derived from the file itself.

    ``preprocess`` (``--preprocess``) overrides the preprocessing either way.
    """
    try:
        manifest = find_manifest(path)
    except ModelError:
        manifest = derive_manifest(path)
    if preprocess:
        manifest.preprocessing = manifest.preprocessing.override(preprocess)
        manifest.source["preprocessing"] = f"given: --preprocess {preprocess}"
        if manifest.source.get("any_size"):  # a TorchScript model that runs at any size
            h, w = manifest.preprocessing.size
            shape = manifest.input.shape
            manifest.input.shape = shape[:2] + [h, w] if manifest.input.layout == "NCHW" \
                else [shape[0], h, w, shape[3]]
    return manifest


def preprocessing_known(manifest: Manifest) -> bool:
    """False for a derived manifest whose pixel scaling could not be found out."""
    return manifest.source.get("preprocessing") != UNKNOWN


def derive_manifest(path) -> Manifest:
    """A manifest read off an artifact that has none (see the module docstring).

    Raises:
        RuntimeFailure: the file cannot be read as its suffix says, or is no image model.
    """
    p = Path(path)
    if not p.exists():
        raise RuntimeFailure(f"Artifact not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".tflite":
            inp, out, why = _tflite_io(p.read_bytes())
        elif suffix == ".onnx":
            inp, out, why, info = _onnx_io(p)
            manifest = _manifest("onnx", inp, out, why)
            if info.logits and out.dtype == "float32":
                manifest.conversion["logits"] = {
                    "softmax": "applied by the runtime after the model",
                    "why": f"the graph ends in {info.ends_in}, not Softmax"}
            return manifest
        elif suffix in (".keras", ".h5", ".hdf5") or p.is_dir():
            return _reference_manifest(p)
        elif suffix in TORCH_SUFFIXES:
            return _reference_manifest(p)
        elif suffix == ".pte":
            return _pte_manifest(p)
        else:
            raise RuntimeFailure(f"{p.name}: no manifest, and edgeproof reads .tflite, .onnx, "
                                 "Keras, PyTorch (.pt2, TorchScript) and ExecuTorch (.pte) "
                                 "files only.")
    except (RuntimeFailure, ModelError):
        raise
    except Exception as e:  # a malformed file: Python's parsers raise, they do not crash
        raise RuntimeFailure(f"{p.name} has no manifest and cannot be read as {suffix}: "
                             f"{type(e).__name__}: {first_line(e, 150)}") from None
    return _manifest(suffix.lstrip("."), inp, out, why)


def _manifest(fmt: str, inp: TensorInfo, out: TensorInfo, why: tuple | None) -> Manifest:
    shape = inp.shape
    if len(shape) != 4 or len(out.shape) != 2 or out.shape[1] < 1:
        raise RuntimeFailure(f"The {fmt} file has input {shape} and output {out.shape}; "
                             "edgeproof measures image classifiers (N, H, W, C) -> (N, classes).")
    h, w, c = (shape[2], shape[3], shape[1]) if inp.layout == "NCHW" else shape[1:]
    if min(h, w) < 1 or c not in (1, 3):
        raise RuntimeFailure(f"The {fmt} file's input {shape} is not an image of 1 or 3 "
                             "channels; pass a manifest.")
    pre = Preprocessing(size=[int(h), int(w)], color="grayscale" if c == 1 else "rgb")
    if why:
        pre = pre.override({"scale": why[0], "offset": why[1]})
    return Manifest(format=f"{fmt} (no manifest)", class_names=[str(i) for i in range(out.shape[1])],
                    input=inp, output=out, preprocessing=pre,
                    source={"manifest": "derived from the artifact",
                            "preprocessing": f"detected: {why[2]}" if why else UNKNOWN})


def _range_scale(lo: float, hi: float) -> tuple | None:
    """(scale, offset, why) for an input whose values span [lo, hi]."""
    cases = ((0.0, 255.0, 1.0, 0.0, _RAW), (0.0, 1.0, 1 / 255, 0.0, "pixels * 1/255"),
             (-1.0, 1.0, 2 / 255, -1.0, "pixels * 1/127.5 - 1"))
    for want_lo, want_hi, scale, offset, what in cases:
        tol = 0.1 * (want_hi - want_lo)
        if abs(lo - want_lo) <= tol and abs(hi - want_hi) <= tol:
            return scale, offset, f"the input's quantization range is [{lo:.3g}, {hi:.3g}]: {what}"
    return None


def _tflite_io(data: bytes):
    fb = tflite_schema()
    model = fb.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    tensors = [graph.Tensors(graph.Inputs(0)), graph.Tensors(graph.Outputs(0))]
    infos = []
    for t in tensors:
        dtype = _TFLITE_TYPES.get(t.Type())
        if dtype is None:
            raise RuntimeFailure(f"unsupported tensor type {t.Type()}")
        q = t.Quantization()
        scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
        quant = {"scale": float(scale[0]), "zero_point": int(q.ZeroPointAsNumpy()[0])} \
            if scale is not None and dtype != "float32" else None
        infos.append(TensorInfo(t.Name().decode(errors="replace"),
                                [-1] + [int(d) for d in t.ShapeAsNumpy()[1:]], dtype, "NHWC", quant))
    inp = infos[0]
    why = None
    if inp.quantization:
        info = np.iinfo(inp.dtype)
        s, z = inp.quantization["scale"], inp.quantization["zero_point"]
        why = _range_scale((info.min - z) * s, (info.max - z) * s)
    else:
        why = _tflite_first_mul(model, graph, data)
    return inp, infos[1], why


def _tflite_first_mul(model, graph, data: bytes) -> tuple | None:
    """(1, 0, why) when the op reading the input is MUL by a constant scalar below 0.1."""
    fb = tflite_schema()
    source = graph.Inputs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        ins = list(op.InputsAsNumpy())
        if source not in ins:
            continue
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != fb.BuiltinOperator.MUL:
            return None
        other = graph.Tensors([t for t in ins if t != source][0])
        raw = model.Buffers(other.Buffer()).DataAsNumpy()
        if not isinstance(raw, np.ndarray) or raw.size != 4:
            return None
        value = float(raw.view(np.float32)[0])
        return (1.0, 0.0, f"the first op multiplies the input by {value:.6g}: {_RAW}") \
            if 0 < value < RAW_PIXEL_SCALE else None
    return None


def _onnx_io(path: Path):
    """(input, output, evidence) of an ONNX file, read in Python (``inspect_onnx``)."""
    info = inspect_onnx(path)
    if len(info.inputs) != 1:
        raise RuntimeFailure(f"{path.name} has {len(info.inputs)} inputs "
                             f"({', '.join(info.inputs)}); edgeproof measures image "
                             "classifiers with one image input.")
    for dtype, what in ((info.input_dtype, "input"), (info.output_dtype, "output")):
        if dtype is None:
            raise RuntimeFailure(f"unsupported {what} type")
    layout = "NCHW" if info.layout == "NCHW" else "NHWC"
    # A fixed batch stays fixed: torch.onnx.export specialises it to the example's unless
    # told otherwise, and such a file runs at that batch only.
    inp = TensorInfo(info.inputs[0], info.input_dims, info.input_dtype, layout)
    out = TensorInfo(info.outputs[0], [-1] + info.output_dims[1:], info.output_dtype)
    return inp, out, evidence_from_ops(info.leading), info


def _pte_manifest(path: Path) -> Manifest:
    """An ExecuTorch program's manifest from its execution plan (``pte_facts``): NCHW sizes,
    the batch dynamic or fixed as planned, and the input's dim order recorded (the runtime
    lays its input out in it). Its last ops run inside the XNNPACK delegate, where the
    plan cannot show a softmax: unless a softmax kernel runs outside it, the output is
    taken for logits (a PyTorch classifier's) and softmax applied after it, which keeps
    the top-1 of a program that already ends in softmax."""
    facts = pte_facts(path)
    sizes = facts.input_sizes
    if len(sizes) != 4:
        raise RuntimeFailure(f"{path.name} takes input {sizes}; edgeproof measures image "
                             "classifiers (N, C, H, W) -> (N, classes).")
    inp = TensorInfo("x", [-1 if facts.input_dynamic else sizes[0], *sizes[1:]],
                     facts.input_dtype, "NCHW")
    out = TensorInfo("output", [-1, *facts.output_sizes[1:]], facts.output_dtype)
    manifest = _manifest("pte", inp, out, None)
    manifest.conversion["executorch"] = {
        "dim_order": facts.dim_order, "max_batch": facts.max_batch,
        "delegates": facts.delegates, "kernel_ops": facts.kernel_ops,
        "derived": "from the program's execution plan"}
    if not any("softmax" in op for op in facts.kernel_ops) and facts.output_dtype == "float32":
        manifest.conversion["logits"] = {
            "softmax": "applied by the runtime after the model",
            "why": "no softmax outside the XNNPACK delegate: taken for logits"}
    return manifest


def _reference_manifest(path: Path) -> Manifest:
    """A Keras file's, SavedModel's or PyTorch file's manifest, through the core loader.

    A PyTorch program takes NCHW and (usually) ends in logits: its runtime hands back the
    raw output, so the manifest says ``logits`` and every runtime applies softmax after it.
    """
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _DERIVED:
        ref = load_reference(path)
        pre, names, how = reference_preprocessing(ref, strict=False)
        fmt = {"saved_model": "saved_model", "torch_export": "pt2",
               "torchscript": "torchscript"}.get(ref.kind, "keras")
        h, w, c = ref.input_shape
        torch_kind = ref.kind in TORCH_KINDS
        batch = ref.extras.get("batch") or -1 if torch_kind else -1
        inp = TensorInfo(ref.input_name, [batch, c, h, w], layout="NCHW") if torch_kind \
            else TensorInfo(ref.input_name, [-1, *ref.input_shape])
        _DERIVED[key] = Manifest(
            format=f"{fmt} (no manifest)",
            class_names=names or [str(i) for i in range(ref.num_classes)],
            input=inp, output=TensorInfo("probs", [-1, ref.num_classes]), preprocessing=pre,
            source={"manifest": "derived from the model", "kind": ref.kind,
                    "preprocessing": UNKNOWN if how.startswith("assumed") else how})
        if ref.extras.get("any_size"):
            _DERIVED[key].source["any_size"] = True
        if torch_kind and ref.outputs_logits:
            _DERIVED[key].conversion["logits"] = {
                "softmax": "applied by the runtime after the model", "why": ref.output_why}
    return Manifest.from_dict(_DERIVED[key].to_dict())
