"""PyTorch files as ``edgeproof info`` reads them: a ``torch.export`` program (``.pt2``) and
a TorchScript module, loaded with PyTorch's own loaders and never called; and the slot
for ExecuTorch ``.pte`` files.

A ``.pt2`` keeps its example input: shape (the batch symbolic when exported with a
dynamic batch), dtype and dim order (an example permuted from NHWC arrays is
channels_last, and a ``.pte`` lowered from it expects that order), and its graph of ATen
ops. TorchScript keeps no input shape: the channels are read off the first
convolution's weight and the class count off the last linear layer's, both said so;
its op histogram is the inlined graph's ``aten::`` ops. A ``torch.save`` pickle is named
for what it is and not unpickled (``core.reference_torch``).

Example:
    >>> read_pt2(Path("net.pt2")).inputs[0].shape_text()  # doctest: +SKIP
    'N?x3x16x16'
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edgeproof.app.file_info import FileInfo, TensorSummary, dims
from edgeproof.errors import ModelError
from edgeproof.quiet import quiet_native
from edgeproof.reference_torch import SAVE_PROGRAM, torch_file_kind, torch_module

_PROBABILITY = ("softmax", "_softmax", "log_softmax", "_log_softmax")


def _kind(p: Path, want: str) -> None:
    kind = torch_file_kind(p)
    if kind == want:
        return
    what = {"pickle": "a torch.save pickle (edgeproof does not unpickle)",
            "torch_export": "a torch.export program", "torchscript": "a TorchScript module",
            None: "not a PyTorch zip archive (truncated, or another format)"}[kind]
    raise ModelError(f"{p.name} is {what}, not "
                     f"{'a torch.export program' if want == 'torch_export' else 'TorchScript'}"
                     f"; save one with {SAVE_PROGRAM}.")


def _val_summary(name: str, val) -> TensorSummary:
    import torch

    shape = [int(d) if isinstance(d, int) else -1 for d in val.shape]
    order = None
    if len(shape) == 4 and not val.is_contiguous() and \
            val.is_contiguous(memory_format=torch.channels_last):
        order = "channels_last"
    t = TensorSummary(name, dims(shape), str(val.dtype).replace("torch.", ""))
    if order:
        t.layout = "NCHW (channels_last in memory)"
    return t


def _target(n) -> str:
    name = str(n.target)
    return name.removeprefix("aten.").removesuffix(".default")


def _ranges(program, inputs: list[TensorSummary], nodes: dict) -> dict[str, str]:
    """``{"x[0]": "1..inf"}``: the range torch.export allows each dynamic input axis."""
    out = {}
    for t in inputs:
        for axis, d in enumerate(nodes[t.name].meta["val"].shape):
            if isinstance(d, int):
                continue
            vr = program.range_constraints.get(d.node.expr)
            hi = "inf" if vr is None or "oo" in str(vr.upper) else str(vr.upper)
            out[f"{t.name}[{axis}]"] = f"{vr.lower if vr is not None else 0}..{hi}"
    return out


def read_pt2(p: Path) -> FileInfo:
    """A ``torch.export`` program as a ``FileInfo`` (see the module docstring)."""
    _kind(p, "torch_export")
    torch = torch_module()
    from torch.export.graph_signature import InputKind, OutputKind

    with quiet_native():
        program = torch.export.load(str(p))
    sig = program.graph_signature
    nodes = {n.name: n for n in program.graph.nodes}
    inputs = [_val_summary(s.arg.name, nodes[s.arg.name].meta["val"]) for s in sig.input_specs
              if s.kind == InputKind.USER_INPUT and "val" in nodes[s.arg.name].meta]
    outputs = [_val_summary(s.arg.name, nodes[s.arg.name].meta["val"])
               for s in sig.output_specs
               if s.kind == OutputKind.USER_OUTPUT and s.arg.name in nodes
               and "val" in nodes[s.arg.name].meta]
    ops = Counter(_target(n) for n in program.graph.nodes if n.op == "call_function")
    order = "channels_last" if any("channels_last" in (t.layout or "") for t in inputs) \
        else "contiguous"
    last = next((n for n in reversed(program.graph.nodes) if n.op == "call_function"), None)
    logits = last is not None and _target(last).split(".")[0] not in _PROBABILITY
    params = sum(int(v.numel()) for v in program.state_dict.values())
    return FileInfo(str(p), "pt2", "torch.export program (.pt2)", f"torch (read by "
                    f"{torch.__version__})", inputs, outputs, "float",
                    "an exported PyTorch program computes in its tensors' dtype",
                    dict(ops.most_common()),
                    details={"dim_order": order, "parameters": params,
                             "dynamic": _ranges(program, inputs, nodes)},
                    notes=[f"the graph ends in {_target(last)}: logits (softmax applied after "
                           "it)"] if logits else [])


def read_torchscript(p: Path) -> FileInfo:
    """A TorchScript module as a ``FileInfo`` (see the module docstring)."""
    _kind(p, "torchscript")
    torch = torch_module()
    with quiet_native():
        module = torch.jit.load(str(p), map_location="cpu")
    params = list(module.parameters())
    conv = next((w for w in params if w.ndim == 4), None)
    linear = next((w for w in reversed(params) if w.ndim == 2), None)
    names = [i.debugName().split(".")[0] for i in list(module.graph.inputs())[1:]]
    inputs = [TensorSummary(n, dims([-1, int(conv.shape[1]), -1, -1]) if conv is not None
                            and i == 0 else [], None) for i, n in enumerate(names)]
    outputs = [TensorSummary("output", ["N", int(linear.shape[0])], None)] \
        if linear is not None else []
    ops = Counter(n.kind().removeprefix("aten::") for n in module.inlined_graph.nodes()
                  if n.kind().startswith("aten::"))
    notes = ["TorchScript keeps no input shape: the channels come from the first "
             "convolution's weight, the size is unknown (edgeproof takes --preprocess crop=N)"]
    if linear is not None:
        notes.append("the class count comes from the last linear layer's weight")
    return FileInfo(str(p), "torchscript", "TorchScript module",
                    f"torch (read by {torch.__version__})", inputs, outputs, "float",
                    "a TorchScript module computes in float32 unless its ops say otherwise",
                    dict(ops.most_common()), notes=notes,
                    details={"parameters": sum(int(w.numel()) for w in params),
                             "code": module.original_name})
