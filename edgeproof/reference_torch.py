"""PyTorch files as reference models: ``torch.export`` programs (``.pt2``) and TorchScript,
run in PyTorch on the CPU as the ground truth every export is compared with.

Both are loaded with the ecosystem's own APIs (``torch.export.load``, ``torch.jit.load``),
so no model code is needed and nothing is unpickled: a ``torch.save`` file (a
``state_dict`` or a pickled module) is read only with ``weights_only=True`` to tell the
user what it is, and refused with the line that saves a program instead.

What the file says about itself:

- ``.pt2``: the example input's shape (batch symbolic when exported with a dynamic
  batch, else fixed), its dim order (an example made by permuting NHWC arrays is
  channels_last, and a ``.pte`` lowered from it expects that order; recorded in
  ``extras["dim_order"]``), and the op that makes the output (``softmax``: probabilities;
  anything else: logits, softmax applied after it);
- TorchScript keeps no input shape: the channels come from the first convolution's
  weight, the size from a trial run over common sizes (a model that runs at several
  sizes says so; ``--preprocess crop=N`` then sets the size), the output kind from the
  graph's last op.

Example:
    >>> ref = load_torch_reference(Path("net.pt2"))  # doctest: +SKIP
    >>> ref.kind, ref.layout, ref.outputs_logits  # doctest: +SKIP
    ('torch_export', 'NCHW', True)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError, first_line
from edgeproof.manifest import sha256_file
from edgeproof.preprocess import softmax
from edgeproof.reference_model import Reference

TORCH_KINDS = ("torch_export", "torchscript")
TORCH_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".torchscript", ".jit")
INSTALL = 'pip install "edgeproof[torch]" (the CPU wheel: see README, Install)'
SAVE_PROGRAM = ('torch.export.save(torch.export.export(model.eval(), (example,)), "model.pt2") '
                '(or torch.jit.save(torch.jit.trace(model.eval(), example), "model.pt"))')
# Sizes a TorchScript file is tried at, most common first (CIFAR, MNIST, ImageNet, ...).
TRIAL_SIZES = (32, 28, 224, 64, 96, 128, 150, 160, 192, 256, 299, 112, 48, 16)
_SOFTMAX = ("softmax", "_softmax", "log_softmax", "_log_softmax")


def torch_module():
    """``torch``, or a one-line ModelError naming the extra that installs it.

    Example:
        >>> torch_module().__name__  # doctest: +SKIP
        'torch'
    """
    try:
        import torch
    except ImportError:
        raise ModelError(f"PyTorch models need torch, which is not installed: {INSTALL}.") \
            from None
    return torch


def torch_file_kind(p: Path) -> str | None:
    """``torch_export``, ``torchscript``, ``pickle`` (a ``torch.save`` file) or None, read
    off the zip archive's member names (no loading).

    Example:
        >>> torch_file_kind(Path("README.md")) is None
        True
    """
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    tails = {n.split("/", 1)[-1] for n in names}
    if "archive_format" in tails or any(t.startswith("models/") for t in tails):
        return "torch_export"
    if any(t.startswith("code/") for t in tails) and "data.pkl" in tails:
        return "torchscript"
    if "data.pkl" in tails:
        return "pickle"
    return None


def _refuse_pickle(p: Path) -> ModelError:
    torch = torch_module()
    try:  # weights_only: a hostile pickle cannot run code, it only fails to load
        obj = torch.load(p, map_location="cpu", weights_only=True)
        what = "a state_dict (weights without the model's code)" if isinstance(obj, dict) \
            else f"a saved {type(obj).__name__}"
    except Exception:
        what = "a pickled model (torch.save(model)), which edgeproof does not unpickle"
    return ModelError(f"{p} is {what}; edgeproof runs programs, not pickles: save one with "
                      f"{SAVE_PROGRAM}.")


def load_torch_reference(p: Path) -> Reference:
    """A ``.pt2`` or TorchScript file as a ``Reference`` run by PyTorch (CPU, no grad).

    Raises:
        ModelError: torch missing, a pickle or state_dict, truncated, written by a newer
            torch, two inputs, not an image classifier (one line each).

    Example:
        >>> load_torch_reference(Path("net.pt")).input_shape  # doctest: +SKIP
        (32, 32, 3)
    """
    kind = torch_file_kind(p)
    if kind is None:
        raise ModelError(f"{p} is not a readable PyTorch file (not a zip archive: truncated or "
                         f"another format); save it again with {SAVE_PROGRAM}.")
    if kind == "pickle":
        raise _refuse_pickle(p)
    torch = torch_module()
    try:
        if kind == "torch_export":
            program = torch.export.load(str(p))
            module, facts = program.module(), _program_facts(p, program)
        else:
            module = torch.jit.load(str(p), map_location="cpu").eval()
            facts = _script_facts(p, module)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"PyTorch {torch.__version__} cannot load {p} ({first_line(e, 160)}); "
                         "a file from a newer torch needs that version, a truncated one saving "
                         "again.") from None
    return _reference(p, kind, module, facts)


def _user_inputs(program) -> list:
    from torch.export.graph_signature import InputKind

    ph = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    return [ph[s.arg.name] for s in program.graph_signature.input_specs
            if s.kind == InputKind.USER_INPUT]


def _last_op(nodes) -> str:
    out = next(n for n in nodes if n.op == "output")
    arg = out.args[0]
    while isinstance(arg, (list, tuple)) and arg:
        arg = arg[0]
    target = getattr(arg, "target", "")
    return str(getattr(target, "__name__", target)).split(".")[0]


def _program_facts(p: Path, program) -> dict:
    import torch

    inputs = _user_inputs(program)
    if len(inputs) != 1:
        raise ModelError(f"{p} is a program with {len(inputs)} inputs; edgeproof takes image "
                         "classifiers with one image input.")
    val = inputs[0].meta["val"]
    shape = list(val.shape)
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        raise ModelError(f"{p} takes input {shape}; edgeproof takes images (N, C, H, W) of a "
                         "fixed size.")
    batch = shape[0] if isinstance(shape[0], int) else None
    order = "channels_last" if not val.is_contiguous() and \
        val.is_contiguous(memory_format=torch.channels_last) else "contiguous"
    return {"dims": [int(d) for d in shape[1:]], "batch": batch, "dim_order": order,
            "last_op": _last_op(program.graph.nodes)}


def _script_facts(p: Path, module) -> dict:
    import torch

    n_in = len(list(module.graph.inputs())) - 1  # the first is self
    if n_in != 1:
        raise ModelError(f"{p} is a TorchScript module with {n_in} inputs; edgeproof takes "
                         "image classifiers with one image input.")
    weight = next((w for w in module.parameters() if w.ndim == 4), None)
    channels = int(weight.shape[1]) if weight is not None else 3
    runs = []
    with torch.no_grad():
        for size in TRIAL_SIZES:
            try:
                y = module(torch.zeros(2, channels, size, size))
            except Exception:
                continue
            if isinstance(y, torch.Tensor) and y.ndim == 2 and y.shape[0] == 2:
                runs.append(size)
                if len(runs) == 2:
                    break
    if not runs:
        raise ModelError(f"{p} does not run on (N, {channels}, H, W) images of any common size "
                         f"({', '.join(map(str, TRIAL_SIZES))}); edgeproof takes NCHW image "
                         "classifiers: export it with torch.export (the .pt2 keeps the shape).")
    nodes = [n for n in module.inlined_graph.nodes()]
    last = next((n.kind().split("::")[-1] for n in reversed(nodes)
                 if n.kind().startswith("aten::")), "")
    return {"dims": [channels, runs[0], runs[0]], "batch": None, "dim_order": "contiguous",
            "last_op": last, "any_size": len(runs) > 1}


def _reference(p: Path, kind: str, module, facts: dict) -> Reference:
    torch = torch_module()
    c, h, w = facts["dims"]
    fixed = facts["batch"]
    probe = _probe_output(module, fixed or 2, (c, h, w))
    logits = facts["last_op"] not in _SOFTMAX

    def predict(x: np.ndarray) -> np.ndarray:
        n = len(x)
        if fixed and n < fixed:  # a fixed-batch program: pad, answer for the real rows
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, axis=0)])
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        with torch.no_grad():
            y = module(t).float().numpy()[:n]
        return softmax(y) if logits else y

    why = f"its graph ends in {facts['last_op'] or 'an unknown op'}" + \
        (": logits" if logits else "")
    return Reference(
        path=p, kind=kind, name=p.stem, input_shape=(h, w, c), num_classes=probe,
        input_name="x", predict_fn=predict, layout="NCHW", outputs_logits=logits,
        output_why=why, evidence=None, has_gradients=False, model=None,
        version=f"torch {torch.__version__}", fingerprint=sha256_file(p),
        extras={"module": module, "batch": fixed, "dim_order": facts["dim_order"],
                "any_size": facts.get("any_size", False)})


def _probe_output(module, batch: int, chw: tuple[int, int, int]) -> int:
    torch = torch_module()
    with torch.no_grad():
        y = module(torch.zeros(batch, *chw))
    if not isinstance(y, torch.Tensor) or y.ndim != 2:
        shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ModelError(f"the model outputs {shape}; edgeproof takes classifiers with one "
                         "(N, classes) output.")
    return int(y.shape[1])
