"""ONNX from a PyTorch reference (``.pt2`` / TorchScript), proved against PyTorch first.

``torch.onnx.export`` has known parity traps: the dynamo exporter specialises the batch
to the example's when no dynamic axis is given (a batch-1 example makes a batch-1
graph), and some graphs answer wrongly at a batch they were not traced at. So the
exporters are tried in order, each with a **batch-2 example made contiguous** (an
example permuted from NHWC arrays is channels_last) and a dynamic batch axis:

1. the dynamo exporter (``torch.onnx.export(..., dynamo=True, dynamic_shapes=...)``),
   PyTorch's default;
2. the TorchScript exporter (``dynamo=False``, ``dynamic_axes``), the fallback for
   TorchScript modules and for graphs dynamo cannot trace;
3. the ``.pt2`` program as it was saved (its batch fixed as its example's, when it was
   exported without a dynamic batch: the manifest then keeps that batch).

Each graph (softmax applied to its output when the model ends in logits; ``keras_to_onnx``
appends the Softmax node after) is run on ONNX Runtime and
compared with PyTorch on real images, at batch 1 and at a batch above 1 (only the fixed
batch for a fixed graph); the first that agrees (top-1 on every image, max |Δp| below
``TOLERANCE``) is the export, and the manifest's ``conversion.torch_onnx`` records the
exporter, the check's figures and why the others were not taken.

Example:
    >>> proto, manifest = torch_onnx_graph(ref, ctx, "onnx-fp32", {})  # doctest: +SKIP
    >>> manifest.conversion["torch_onnx"]["exporter"]  # doctest: +SKIP
    'dynamo'
"""

from __future__ import annotations

import io
import logging

import numpy as np

from edgeproof.errors import ExportError, first_line
from edgeproof.export.context import ExportContext, base_manifest
from edgeproof.manifest import TensorInfo
from edgeproof.preprocess import softmax, to_float
from edgeproof.quiet import quiet_native
from edgeproof.reference_onnx import inspect_onnx
from edgeproof.reference_torch import torch_module

TOLERANCE = 1e-4      # max |Δp| between ONNX Runtime and PyTorch on the check images
CHECK_IMAGES = 64     # real images the check runs (the calibration set's first ones)
OPSET = 18            # the dynamo exporter's own default opset


def check_images(ctx: ExportContext, ref, n: int = CHECK_IMAGES) -> tuple[np.ndarray, str]:
    """Float NHWC images to prove an export on, and what they are: the context's real
    calibration images, else seeded random pixels (said so in the manifest).

    Example:
        >>> from edgeproof.manifest import Preprocessing
        >>> ctx = ExportContext(["a"], Preprocessing(size=[4, 4]))
        >>> x, what = check_images(ctx, None, 3)
        >>> x.shape, what
        ((3, 4, 4, 3), 'random pixels (no calibration images were given)')
    """
    if ctx.calibration is not None and len(ctx.calibration):
        return ctx.calibration_float()[:n], f"{min(n, len(ctx.calibration))} calibration images"
    h, w = ctx.preprocessing.size
    pixels = np.random.default_rng(0).integers(0, 256, (n, h, w, ctx.preprocessing.channels),
                                               dtype=np.uint8)
    return to_float(pixels, ctx.preprocessing), "random pixels (no calibration images were given)"


def _example(x: np.ndarray):
    torch = torch_module()
    pair = x[:2] if len(x) >= 2 else np.concatenate([x, x])[:2]
    # contiguous NCHW: a channels_last example would be kept as the graph's dim order
    return torch.from_numpy(np.ascontiguousarray(pair.transpose(0, 3, 1, 2)))


def _dynamo(ref, example):
    torch = torch_module()
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.onnx.export(ref.extras["module"], (example,), dynamo=True, verbose=False,
                             dynamic_shapes=({0: batch},), opset_version=OPSET)
    return prog.model_proto


def _torchscript(ref, example):
    import onnx

    torch = torch_module()
    buf = io.BytesIO()
    torch.onnx.export(ref.extras["module"], (example,), buf, dynamo=False, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                      opset_version=17)
    return onnx.load_from_string(buf.getvalue())


def _as_saved(ref, example):
    torch = torch_module()
    program = torch.export.load(str(ref.path))
    return torch.onnx.export(program, (), dynamo=True, verbose=False).model_proto


EXPORTERS = (("dynamo", _dynamo), ("torchscript", _torchscript), ("as saved", _as_saved))


def _fixed_batch(proto) -> int | None:
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def verify_against_torch(proto, ref, x: np.ndarray, logits: bool = False) -> dict:
    """Run ``proto`` on ONNX Runtime and ``ref`` in PyTorch on ``x`` (float NHWC) at batch 1
    and at a larger batch (the fixed one for a fixed graph); their figures.

    Args:
        logits: the graph ends in logits (a user's file): softmax its outputs first.

    Returns:
        ``{"batch_sizes", "images", "top1_agreement", "max_abs_dp"}``; agreement 1.0 and
        |Δp| under ``TOLERANCE`` mean the graph answers like PyTorch.

    Example:
        >>> verify_against_torch(proto, ref, x)["top1_agreement"]  # doctest: +SKIP
        1.0
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    fixed = _fixed_batch(proto)
    sizes = [fixed] if fixed else [1, min(8, max(2, len(x)))]
    want = ref.predict(x)
    worst, agree = 0.0, 1.0
    for b in sizes:
        n = (len(x) // b) * b or b
        xb = x[:n] if len(x) >= n else np.repeat(x, -(-n // len(x)), axis=0)[:n]
        got = np.concatenate([sess.run(None, {name: np.ascontiguousarray(
            xb[i:i + b].transpose(0, 3, 1, 2))})[0] for i in range(0, n, b)])
        got = softmax(got) if logits else got  # a graph without its Softmax: compare probabilities
        ref_p = want[:n] if len(want) >= n else ref.predict(xb)
        worst = max(worst, float(np.abs(got - ref_p).max()))
        agree = min(agree, float((got.argmax(1) == ref_p.argmax(1)).mean()))
    return {"batch_sizes": sizes, "images": int(len(x)), "top1_agreement": agree,
            "max_abs_dp": worst}


def batch_check(path, ref, ctx: ExportContext) -> dict:
    """``verify_against_torch`` for an ONNX file on disk (its external data read beside it),
    on the context's check images.

    Example:
        >>> batch_check("model.onnx", ref, ctx)["batch_sizes"]  # doctest: +SKIP
        [1, 8]
    """
    import onnx

    x, _ = check_images(ctx, ref)
    return verify_against_torch(onnx.load(str(path)), ref, x, logits=inspect_onnx(path).logits)


def torch_onnx_graph(ref, ctx: ExportContext, fmt: str, options: dict):
    """The float ONNX graph of a PyTorch reference, proved against PyTorch; returns
    (proto, manifest) as ``keras_to_onnx`` does (see the module docstring).

    Raises:
        ExportError: no exporter gave a graph that answers like PyTorch (each one's reason).

    Example:
        >>> proto, manifest = torch_onnx_graph(ref, ctx, "onnx-fp32", {})  # doctest: +SKIP
    """
    x, what = check_images(ctx, ref)
    example, tried = _example(x), []
    for label, exporter in EXPORTERS:
        if label == "as saved" and ref.kind != "torch_export":
            continue
        try:
            with quiet_native(), _torch_logs_off():
                proto = exporter(ref, example)
            # the caller appends the Softmax (keras_to_onnx): compared as probabilities here
            check = verify_against_torch(proto, ref, x, logits=ref.outputs_logits)
        except Exception as e:
            tried.append({"exporter": label, "error": first_line(e, 200)})
            continue
        if check["top1_agreement"] < 1.0 or check["max_abs_dp"] > TOLERANCE:
            tried.append({"exporter": label, "error": "disagrees with PyTorch", **check})
            continue
        return proto, _manifest(ref, ctx, fmt, options, proto, label, check, what, tried)
    raise ExportError(f"{fmt}: no ONNX exporter gave a graph that answers like PyTorch for "
                      f"{ref.describe()}: " + "; ".join(f"{t['exporter']}: {t['error']}"
                                                        for t in tried))


def _manifest(ref, ctx, fmt, options, proto, label, check, what, tried):
    h, w, c = ref.input_shape
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    manifest = base_manifest(ref, ctx, fmt, {**options, "opset": opset})
    manifest.calibration = None
    manifest.input = TensorInfo(proto.graph.input[0].name, [_fixed_batch(proto) or -1, c, h, w],
                                layout="NCHW")
    manifest.output.name = proto.graph.output[0].name
    manifest.conversion["torch_onnx"] = {
        "exporter": label, "opset": opset, "checked_on": what, **check,
        "tolerance": TOLERANCE, "not_taken": tried,
        "why": "torch.onnx.export with a contiguous batch-2 example and a dynamic batch, "
               "proved against PyTorch at batch 1 and above"}
    return manifest


class _torch_logs_off:
    """The exporter logs progress and registry warnings on Python's logging: quiet it."""

    def __enter__(self):
        self._saved = {n: logging.getLogger(n).level for n in ("torch", "onnxscript")}
        for n in self._saved:
            logging.getLogger(n).setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for n, level in self._saved.items():
            logging.getLogger(n).setLevel(level)
