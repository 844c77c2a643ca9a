"""SavedModel references (Keras 3 ``export()``, ``tf.saved_model.save``), and the serving
SavedModel every TensorFlow-kind reference converts from.

A SavedModel runs through its serving signature (``serving_default``, else ``serve``):
one float image input of rank 4, one output. What it expects is read off the frozen
signature before it is ever called (a call under a GradientTape adds consumers to the
input and hides the chain): the first ops (a constant scale: raw pixels) and the last
(Softmax, or logits).

Example:
    >>> ref = load_saved_model(Path("my_savedmodel"))  # doctest: +SKIP
    >>> ref.signature_key, ref.evidence[:2]  # doctest: +SKIP
    ('serving_default', (1.0, 0.0))
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from edgeproof.errors import ModelError, first_line
from edgeproof.keras_loader import keras3
from edgeproof.manifest import sha256_file
from edgeproof.reference_model import Reference, evidence_from_ops
from edgeproof.tfcompat import tf

_PASS = ("Identity", "IdentityN", "Cast", "StopGradient", "Reshape", "Squeeze")
_AFFINE = ("Mul", "RealDiv", "Div", "Sub", "Add", "AddV2")


def check_complete(p: Path) -> None:
    """Refuse a SavedModel folder whose variable shards are missing (a partial copy).

    Example:
        >>> check_complete(Path("truncated_savedmodel"))  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        edgeproof.errors.ModelError: SavedModel truncated_savedmodel is incomplete: ...
    """
    var = p / "variables"
    if not (var / "variables.index").exists():
        return
    shards = sorted(var.glob("variables.data-*"))
    total = {int(m.group(1)) for s in shards if (m := re.search(r"-of-(\d+)$", s.name))}
    missing = max(total, default=1) - len(shards)
    if not shards or missing > 0:
        raise ModelError(f"SavedModel {p} is incomplete: variables/variables.index is there but "
                         f"{missing or 'all'} variables/variables.data-* shard(s) are missing; "
                         "copy the whole folder again.")


def _signature(obj, p: Path):
    sigs = dict(getattr(obj, "signatures", {}) or {})
    key = next((k for k in ("serving_default", "serve") if k in sigs), None)
    if key is None and len(sigs) == 1:
        key = next(iter(sigs))
    if key is None:
        raise ModelError(f"SavedModel {p} has no serving signature ({', '.join(sigs) or 'none'}); "
                         "save it with signatures= or Keras 3 model.export().")
    sig = sigs[key]
    args, kwargs = sig.structured_input_signature
    specs = list(args) + list(kwargs.items())
    if len(specs) != 1 or not kwargs:
        raise ModelError(f"SavedModel {p} signature '{key}' takes {len(specs)} inputs; edgeproof "
                         "takes image classifiers with one image input.")
    in_name, spec = next(iter(kwargs.items()))
    outs = list(sig.structured_outputs)
    if len(outs) != 1:
        raise ModelError(f"SavedModel {p} signature '{key}' has outputs {outs}; edgeproof takes "
                         "classifiers with one output.")
    return key, sig, in_name, spec, outs[0]


def _frozen(sig):
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(sig)


def leading_ops(frozen, max_ops: int = 6) -> list[tuple[str, object]]:
    """``(op, constant)`` of the frozen graph's first ops while they are one chain.

    Example:
        >>> leading_ops(_frozen(sig))[:2]  # doctest: +SKIP
        [('Mul', 0.003921569), ('AddV2', 0.0)]
    """
    t = tf()
    gd = frozen.graph.as_graph_def()
    nodes, users = {n.name: n for n in gd.node}, {}
    for n in gd.node:
        for i in n.input:
            users.setdefault(i.split(":")[0].lstrip("^"), []).append(n)
    cur = next((n.name for n in gd.node if n.op == "Placeholder"), None)
    found: list[tuple[str, object]] = []
    while cur is not None and len(found) < max_ops:
        nxt = [n for n in users.get(cur, []) if n.op not in ("Shape", "NoOp")]
        if len(nxt) != 1:
            break
        n = nxt[0]
        if n.op in ("Identity", "Cast"):
            cur = n.name
            continue
        consts = [nodes[i.split(":")[0]] for i in n.input
                  if getattr(nodes.get(i.split(":")[0]), "op", "") == "Const"]
        if n.op not in _AFFINE or not consts:
            found.append((n.op, None))
            break
        found.append((n.op, t.make_ndarray(consts[0].attr["value"].tensor)))
        cur = n.name
    return found


def last_op(frozen) -> str:
    """The type of the op that makes the output, past Identity / Reshape / Cast.

    Example:
        >>> last_op(_frozen(sig))  # doctest: +SKIP
        'Softmax'
    """
    out = frozen.outputs[0]
    op = out.op
    while op.type in _PASS and op.inputs:
        out = op.inputs[out.value_index if op.type == "IdentityN" else 0]
        op = out.op
    return op.type


def load_saved_model(p: Path) -> Reference:
    """A SavedModel folder (not written by tf-keras) as a ``Reference``, through its signature.

    Raises:
        ModelError: incomplete or corrupt folder, no serving signature, not one image
            input and one output.

    Example:
        >>> load_saved_model(Path("my_savedmodel")).input_shape  # doctest: +SKIP
        (32, 32, 3)
    """
    t = tf()
    check_complete(p)
    try:
        obj = t.saved_model.load(os.fspath(p))
    except Exception as e:
        msg = first_line(e)
        what = "has a corrupt saved_model.pb" if "parse" in msg.lower() else "cannot be loaded"
        raise ModelError(f"SavedModel {p} {what} ({msg[:160]}); copy the whole folder again or "
                         "re-export it.") from None
    key, sig, in_name, spec, out_name = _signature(obj, p)
    shape = list(spec.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or spec.dtype != t.float32 \
            or shape[3] not in (1, 3):
        raise ModelError(f"SavedModel {p} takes {spec.dtype.name} {shape}; edgeproof takes float32 "
                         "NHWC images of a fixed size with 1 or 3 channels.")
    frozen = _frozen(sig)  # before any call (see the module docstring)
    evidence, ends = evidence_from_ops(leading_ops(frozen)), last_op(frozen)
    logits = ends != "Softmax"
    n = int(sig.structured_outputs[out_name].shape[-1])

    def call(x):
        y = sig(**{in_name: x})[out_name]
        return t.nn.softmax(y) if logits else y

    return Reference(
        path=p, kind="saved_model", name=p.name, input_shape=tuple(int(d) for d in shape[1:]),
        num_classes=n, input_name=in_name, predict_fn=lambda x: call(t.constant(x)).numpy(),
        outputs_logits=logits,
        output_why=f"its graph ends in {ends}" + (": logits" if logits else ""),
        evidence=evidence, has_gradients=True, tf_call=call, signature_key=key,
        extras={"obj": obj, "signature": sig, "output": out_name}, fingerprint=sha256_file(p))


def serving_saved_model(ref: Reference) -> tuple[str, str]:
    """(folder, signature key) of a SavedModel that outputs ``ref``'s probabilities: what
    the TFLite converter reads. A SavedModel with probabilities is itself; a Keras 3 model
    is written once by Keras' own ``ExportArchive``; a SavedModel ending in logits is
    wrapped with a softmax. The temporary folder lives as long as ``ref``.

    Example:
        >>> serving_saved_model(ref)  # doctest: +SKIP
        ('/tmp/edgeproof-serving-x1/model', 'serving_default')
    """
    if ref.kind == "saved_model" and not ref.outputs_logits:
        return os.fspath(ref.path), ref.signature_key
    if "serving" in ref.extras:
        return ref.extras["serving"]
    t = tf()
    tmp = tempfile.TemporaryDirectory(prefix="edgeproof-serving-")
    out = os.path.join(tmp.name, "model")
    spec = t.TensorSpec([None, *ref.input_shape], t.float32, name="input")
    if ref.kind == "keras3":
        archive = keras3().export.ExportArchive()
        archive.track(ref.model)
        archive.add_endpoint(name="serve", fn=ref.tf_call, input_signature=[spec])
        archive.write_out(out, verbose=False)
    else:
        module = t.Module()
        module.inner = ref.extras["obj"]
        module.serve = t.function(lambda x: {"probs": ref.tf_call(x)}, input_signature=[spec])
        t.saved_model.save(module, out, signatures={"serving_default": module.serve})
    ref.extras["serving"] = (out, "serving_default")
    ref.extras["serving_tmp"] = tmp  # removed when ref goes
    return ref.extras["serving"]
