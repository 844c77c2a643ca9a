"""Keras files (``.keras``, ``.h5``) and SavedModel folders as ``edgeproof info`` reads them:
their saved configuration and signatures, never a built model.

A ``.keras`` archive keeps the model's configuration in ``config.json`` (and which Keras
wrote it in ``metadata.json``); an ``.h5`` file in its ``model_config`` attribute. From
it: the layers (a histogram, nested models counted layer by layer), the input shape and
dtype (the ``InputLayer``), the class count (the last ``Dense``), whether it ends in a
softmax, and a leading ``Rescaling`` (preprocessing evidence). A SavedModel's
``saved_model.pb`` is parsed with TensorFlow's protobuf classes: the serving signature's
inputs and outputs and the ops of the functions it calls; nothing is loaded or traced.

Example:
    >>> read_keras(Path("model.keras")).ops  # doctest: +SKIP
    {'InputLayer': 1, 'Conv2D': 2, 'MaxPooling2D': 1, 'Flatten': 1, 'Dense': 1}
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path

from edgeproof.app.file_info import FileInfo, TensorSummary, dims
from edgeproof.errors import ModelError, first_line
from edgeproof.keras_loader import RAW_PIXEL_SCALE, keras_file_version, keras_major
from edgeproof.reference_tf import check_complete
from edgeproof.tfcompat import tf

_MODELS = ("Sequential", "Functional", "Model")
_TF_DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 6: "int8", 9: "int64",
              10: "bool", 19: "float16", 14: "bfloat16"}
_NOISE = ("NoOp", "Identity", "Const", "ReadVariableOp", "IdentityN", "Placeholder",
          "StatefulPartitionedCall", "PartitionedCall")


def keras_config(p: Path) -> dict:
    """The model configuration a ``.keras`` / ``.h5`` file saved (no model is built).

    Raises:
        ModelError: a zip without config.json, an HDF5 file without model_config.
    """
    if p.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(p) as z:
                return json.loads(z.read("config.json"))
        except (KeyError, ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{p.name} has no readable config.json ({first_line(e)}); save it "
                             "with model.save('name.keras').") from None
    import h5py

    with h5py.File(p, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise ModelError(f"{p.name} is an HDF5 file without model_config: weights only, not a "
                         "model.")
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def _layers(config: dict):
    """(class name, config) of every layer, nested models opened."""
    for layer in (config.get("config") or {}).get("layers", []):
        if layer.get("class_name") in _MODELS:
            yield from _layers(layer)
        else:
            yield layer.get("class_name", "?"), layer.get("config") or {}


def _dtype(cfg: dict) -> str:
    d = cfg.get("dtype")
    if isinstance(d, dict):  # a Keras 3 DTypePolicy
        d = (d.get("config") or {}).get("name")
    return str(d or "float32")


def _input(layers: list, config: dict) -> TensorSummary | None:
    for name, cfg in layers:
        if name == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape") or []
            return TensorSummary(cfg.get("name", "input"), dims([s or -1 for s in shape]),
                                 _dtype(cfg))
    shape = (config.get("build_config") or {}).get("input_shape")
    return TensorSummary("input", dims([s or -1 for s in shape])) if shape else None


def _output(layers: list) -> tuple[TensorSummary | None, bool | None]:
    """The last Dense's (N, units) output and whether the model ends in a softmax."""
    softmax = None
    for name, cfg in reversed(layers):
        if softmax is None and (name == "Softmax" or cfg.get("activation") == "softmax"):
            softmax = True
        if name == "Dense":
            if softmax is None:
                softmax = cfg.get("activation") == "softmax"
            return TensorSummary(cfg.get("name", "output"), ["N", int(cfg["units"])],
                                 _dtype(cfg)), softmax
    return None, softmax


def _evidence(layers: list) -> tuple | None:
    """A leading Rescaling by less than 0.1: raw 0-255 pixels in (as core.keras_loader
    reads a built model's first layers)."""
    for name, cfg in layers:
        if name == "InputLayer":
            continue
        if name == "Rescaling":
            scale = cfg.get("scale")
            if isinstance(scale, (int, float)) and 0 < scale < RAW_PIXEL_SCALE:
                return 1.0, 0.0, (f"its first layer is Rescaling(scale={scale:.6g}, offset="
                                  f"{cfg.get('offset', 0)}): it takes raw 0-255 pixels")
        return None
    return None


def read_keras(p: Path) -> FileInfo:
    """A ``.keras`` / ``.h5`` file as a ``FileInfo`` (see the module docstring)."""
    version = keras_file_version(p)
    config = keras_config(p)
    layers = list(_layers(config))
    inp = _input(layers, config)
    out, softmax = _output(layers)
    policy = {_dtype(cfg) for _, cfg in layers} - {"float32"}
    half = any("float16" in d and "bfloat16" not in d for d in policy)
    kind = "float16" if half else "float"
    why = f"dtype policy {', '.join(sorted(policy))}" if policy else \
        "a Keras model computes in float32"
    notes = ["the last layer has no softmax: logits (softmax applied after it)"] \
        if softmax is False else []
    which = "Keras 3" if keras_major(version) >= 3 else "tf-keras 2"
    return FileInfo(str(p), "keras", f"{which} {p.suffix.lower()} ({config.get('class_name')})",
                    f"keras {version}", [inp] if inp else [], [out] if out else [], kind, why,
                    dict(Counter(name for name, _ in layers)), notes=notes,
                    details={"layers": len(layers), "model_class": config.get("class_name")},
                    evidence=_evidence(layers))


def _signature_tensors(specs) -> list[TensorSummary]:
    out = []
    for name, t in sorted(specs.items()):
        sizes = [d.size for d in t.tensor_shape.dim] if not t.tensor_shape.unknown_rank else []
        out.append(TensorSummary(name, dims(sizes), _TF_DTYPES.get(t.dtype, str(t.dtype))))
    return out


def _function_ops(graph_def, names: list[str]) -> Counter:
    """Ops of the functions ``names`` call, calls followed (each function once)."""
    lib = {f.signature.name: f for f in graph_def.library.function}
    seen, todo, ops = set(), list(names), Counter()
    while todo:
        name = todo.pop()
        if name in seen or name not in lib:
            continue
        seen.add(name)
        for node in lib[name].node_def:
            if "f" in node.attr:
                todo.append(node.attr["f"].func.name)
            if node.op not in _NOISE:
                ops[node.op] += 1
    return ops


def read_saved_model(p: Path) -> FileInfo:
    """A SavedModel folder as a ``FileInfo``: its serving signature and the ops it calls."""
    check_complete(p)
    tf()  # the protobuf classes live in TensorFlow; imported through the one configured path
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((p / "saved_model.pb").read_bytes())
    except Exception as e:
        raise ModelError(f"{p.name}/saved_model.pb is not a readable SavedModel "
                         f"({first_line(e, 120)}): copy the folder again.") from None
    if not sm.meta_graphs:
        raise ModelError(f"{p.name}/saved_model.pb holds no graph.")
    mg = sm.meta_graphs[0]
    sigs = {k: v for k, v in mg.signature_def.items() if not k.startswith("__")}
    key = next((k for k in ("serving_default", "serve") if k in sigs), next(iter(sigs), None))
    sig = sigs.get(key)
    # From the nodes that make the signature's outputs: not the saver's functions.
    made = {t.name.split(":")[0] for t in sig.outputs.values()} if sig else set()
    calls = [n.attr["f"].func.name for n in mg.graph_def.node
             if "f" in n.attr and (n.name in made or not made)]
    tf_version = mg.meta_info_def.tensorflow_version
    return FileInfo(str(p), "saved_model", "SavedModel" + (" (tf-keras)" if (
        p / "keras_metadata.pb").exists() else ""),
        f"TensorFlow {tf_version}" if tf_version else None,
        _signature_tensors(sig.inputs) if sig else [], _signature_tensors(sig.outputs) if sig
        else [], "float", "a SavedModel's serving graph computes in float32 unless its ops "
        "say otherwise", dict(_function_ops(mg.graph_def, calls).most_common()),
        details={"signature": key, "signatures": sorted(sigs)},
        notes=[] if sig else ["no serving signature: save it with signatures= or Keras 3 "
                              "model.export()"])
