"""ONNX converter: tf2onnx for the TensorFlow kinds (NHWC float32 input as in Keras, dynamic
batch), and the file itself for an ONNX reference.

tf-keras models go through ``tf2onnx.convert.from_keras``; Keras 3 models and SavedModels
through ``tf2onnx.convert.from_function`` on their serving call (Keras 3's own
``export(format="onnx")`` wraps the same ``from_function``, with opset 15 by default and
a numpy-2 patch; parity measured equal, docs/EXPORT.md). An ONNX reference is already
ONNX: ``onnx-fp32`` is the graph itself with a dynamic batch and, when it ends in
logits, a Softmax appended (exact: the same argmax; the manifest says so), and the
reduced-precision formats start from that graph.
"""

from __future__ import annotations

import json

import numpy as np

from edgeproof.embedded import LEGACY_KEYS, MANIFEST_KEY
from edgeproof.errors import ExportError, first_line
from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, base_manifest, source_of
from edgeproof.export.torch_onnx import torch_onnx_graph
from edgeproof.manifest import Manifest, TensorInfo
from edgeproof.quiet import quiet_native
from edgeproof.reference_torch import TORCH_KINDS
from edgeproof.tfcompat import tf


def keras_to_onnx(model, ctx: ExportContext, fmt: str, opset: int, options: dict):
    """The float32 ONNX graph of ``model`` (any kind) and its manifest (not yet embedded).

    Args:
        model: a single-input, single-output model: a live Keras model or a ``Reference``.
        ctx: the export context (class names, preprocessing).
        fmt: the format name recorded in the manifest.
        opset: the ONNX opset tf2onnx targets (an ONNX reference keeps its own).
        options: the format's options, recorded in the manifest.

    Example:
        >>> proto, manifest = keras_to_onnx(model, ctx, "onnx-fp32", 17, {})  # doctest: +SKIP
    """
    ref = source_of(model)
    if ref.kind == "onnx":
        return onnx_reference_graph(ref, ctx, fmt, options)
    if ref.kind in TORCH_KINDS:  # torch.onnx.export, proved against PyTorch
        proto, manifest = torch_onnx_graph(ref, ctx, fmt, options)
        if ref.outputs_logits:
            manifest.output.name = append_softmax(proto)
        return proto, manifest
    t = tf()
    import tf2onnx

    manifest = base_manifest(model, ctx, fmt, {"opset": opset, **options})
    manifest.calibration = None
    spec = (t.TensorSpec([None, *ref.input_shape], t.float32, name="input"),)
    try:
        with quiet_native():
            if ref.kind == "tf_keras":
                proto, _ = tf2onnx.convert.from_keras(ref.model, input_signature=spec,
                                                      opset=opset)
            else:  # Keras 3 / SavedModel: the serving call, softmax included for logits
                proto, _ = tf2onnx.convert.from_function(t.function(ref.tf_call),
                                                         input_signature=spec, opset=opset)
    except Exception as e:
        raise ExportError(f"{fmt} conversion failed: {first_line(e)}. "
                          "Try another --option opset=N, or tflite formats.") from None
    manifest.input.name = proto.graph.input[0].name
    manifest.output.name = proto.graph.output[0].name
    return proto, manifest


def _unused(graph, base: str) -> str:
    names = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
    name, k = base, 1
    while name in names:
        name, k = f"{base}_{k}", k + 1
    return name


def append_softmax(proto) -> str:
    """Append a Softmax over the classes to the graph's single output; returns its name.

    Example:
        >>> append_softmax(onnx.load("resnet18.onnx"))  # doctest: +SKIP
        'probs'
    """
    from onnx import helper

    g = proto.graph
    old = g.output[0]
    name = _unused(g, "probs")
    g.node.append(helper.make_node("Softmax", [old.name], [name], axis=1,
                                   name=_unused(g, "edgeproof_softmax")))
    new = helper.make_tensor_value_info(name, old.type.tensor_type.elem_type, None)
    new.type.tensor_type.shape.CopyFrom(old.type.tensor_type.shape)
    del g.output[:]
    g.output.append(new)
    return name


def _dynamic_batch(proto, fmt: str, path) -> None:
    """A graph written with a fixed batch (PyTorch without dynamic_axes) gets a symbolic
    one, checked by running it at batch 2; a graph that cannot is refused."""
    g = proto.graph
    inits = {i.name for i in g.initializer}
    inp = next(i for i in g.input if i.name not in inits)
    dim = inp.type.tensor_type.shape.dim[0]
    if not dim.HasField("dim_value"):
        return
    for value in (inp, g.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del g.value_info[:]  # shapes inferred for the fixed batch would contradict it
    import onnxruntime as ort

    shape = [2] + [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
    try:
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, {inp.name: np.zeros(shape, np.float32)})
    except Exception as e:
        raise ExportError(f"{fmt}: {path.name} has a fixed batch of {dim.dim_value} and does not "
                          f"run at another ({first_line(e, 120)}); re-export it with a dynamic "
                          "batch (torch.onnx.export(..., dynamic_axes={'input': {0: 'N'}})).") \
            from None


def onnx_reference_graph(ref, ctx: ExportContext, fmt: str, options: dict):
    """The ONNX reference's own graph as the float export: dynamic batch, Softmax appended
    when it ends in logits, its opset kept; returns (proto, manifest).

    Example:
        >>> ref = load_reference("r18.onnx")  # doctest: +SKIP
        >>> proto, manifest = onnx_reference_graph(ref, ctx, "onnx-fp32", {})  # doctest: +SKIP
        >>> manifest.input.layout  # doctest: +SKIP
        'NCHW'
    """
    import onnx

    try:
        proto = onnx.load(str(ref.path))
    except Exception as e:
        raise ExportError(f"{fmt}: cannot read {ref.path}: {first_line(e)}") from None
    opset = ref.extras.get("opset")
    manifest = base_manifest(ref, ctx, fmt, {**options, "opset": opset})
    manifest.calibration = None
    h, w, c = ref.input_shape
    if ref.layout == "NCHW":
        manifest.input = TensorInfo(ref.input_name, [-1, c, h, w], layout="NCHW")
    _dynamic_batch(proto, fmt, ref.path)
    if ref.outputs_logits:
        append_softmax(proto)
    manifest.conversion["source_graph"] = {
        "from": ref.path.name, "opset": opset,
        "why": "the ONNX reference's own graph (no conversion); its opset is kept"}
    manifest.output.name = proto.graph.output[0].name
    return proto, manifest


def onnx_artifact(proto, manifest: Manifest) -> Artifact:
    """Embed ``manifest`` in the graph's ``metadata_props`` (replacing any) and wrap it.

    Example:
        >>> art = onnx_artifact(proto, manifest)  # doctest: +SKIP
    """
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in (MANIFEST_KEY, *LEGACY_KEYS)]
    del proto.metadata_props[:]
    for key, value in keep + [(MANIFEST_KEY, json.dumps(manifest.to_dict()))]:
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    proto.producer_name = "edgeproof"
    return Artifact(proto.SerializeToString(), ".onnx", manifest)


def convert_onnx(model, ctx: ExportContext, *, fmt: str, opset: int = 17, **options) -> Artifact:
    """Convert a model to ONNX (see the module docstring); the manifest is embedded in
    metadata_props.

    Args:
        model: a live Keras model or a ``Reference`` of any kind.
        ctx: the export context.
        fmt: the format name (``onnx-fp32``).
        opset: the ONNX opset.

    Example:
        >>> art = convert_onnx(model, ctx, fmt="onnx-fp32")  # doctest: +SKIP
    """
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, options)
    return onnx_artifact(proto, manifest)
