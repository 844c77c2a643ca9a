"""What OpenVINO says about this machine and a model: its devices, an IR's facts, and the
precision each layer of a compiled model really runs at.

OpenVINO's CPU plugin runs float models in bf16 on CPUs with bf16 units (AVX512-BF16,
AMX) unless told otherwise, and says so only in the compiled model's properties: the
``INFERENCE_PRECISION_HINT`` it settled on and, per layer of its execution graph, the
``runtimePrecision``. ``layer_precisions`` counts the second over the layers that
compute (not the inputs, constants and layout moves), and ``precision_label`` names
them, the most common first: ``f32``; ``bf16+f32`` (convolutions in bf16, softmax kept
f32); ``int8+f32`` (an int8 model whose float parts run f32).

Nothing here imports OpenVINO until a function that needs it is called.

Example:
    >>> precision_label({"bf16": 7, "f32": 1})
    'bf16+f32'
    >>> clean_message(RuntimeError("Exception from src/core.cpp:84:\\nbad weights\\n"))
    'bad weights'
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.errors import RuntimeFailure

INSTALL = 'pip install "edgeproof[openvino]"'
# Layers that move or reshape data: their precision is the one of their neighbours.
_MOVES = frozenset(("Input", "Parameter", "Output", "Result", "Const", "Constant", "Reorder",
                    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concatenation", "Split",
                    "Gather", "Convert", "ShapeOf"))
_INTEGER = {"u8": "int8", "i8": "int8", "u4": "int4", "i4": "int4"}
_WHERE = re.compile(r"^(Exception from |Check '.*' failed at )\S+")


def openvino_module():
    """``openvino``, or a one-line RuntimeFailure naming the extra that installs it.

    Example:
        >>> openvino_module().__name__  # doctest: +SKIP
        'openvino'
    """
    try:
        import openvino
    except ImportError:
        raise RuntimeFailure(f"The openvino runtime needs OpenVINO, which is not installed: "
                             f"{INSTALL}.") from None
    return openvino


@functools.lru_cache(maxsize=1)
def core():
    """One ``openvino.Core`` per process (plugins load once; every setting that changes
    speed or results is passed per compiled model, never set on the core)."""
    return openvino_module().Core()


def available_devices() -> list[str]:
    """OpenVINO's devices on this machine in edgeproof's names (``cpu``, ``gpu``, ``npu``),
    sorted; empty without OpenVINO. ``GPU.0`` and ``GPU.1`` are both ``gpu``.

    Example:
        >>> "cpu" in available_devices()  # doctest: +SKIP
        True
    """
    try:
        found = core().available_devices
    except RuntimeFailure:
        return []
    return sorted({d.split(".")[0].lower() for d in found})


def clean_message(e: BaseException, limit: int = 250) -> str:
    """OpenVINO's error as one line: its own words, not the C++ file it was raised in.

    Example:
        >>> clean_message(RuntimeError("Exception from a.cpp:1:\\nCheck 'x' failed at b:2:\\nno"))
        'no'
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    said = [ln for ln in lines if not _WHERE.match(ln)]
    return ((said or lines or [type(e).__name__])[0])[:limit]


def layer_precisions(compiled) -> dict[str, int]:
    """``{runtime precision: layers}`` of a compiled model's execution graph, over the
    layers that compute; integer kinds as ``int8`` / ``int4``.

    Example:
        >>> layer_precisions(core().compile_model("m.xml", "CPU"))  # doctest: +SKIP
        {'bf16': 3, 'f32': 1}
    """
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        if "runtimePrecision" not in rt or "layerType" not in rt:
            continue  # a plugin whose execution graph does not say (some GPUs)
        if str(rt["layerType"].astype(str)) in _MOVES:
            continue
        kind = str(rt["runtimePrecision"].astype(str)).lower()
        counts[_INTEGER.get(kind, kind)] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def precision_label(counts: dict[str, int], hint: str | None = None) -> str:
    """The precisions the computing layers ran at, the most common first; the hint when
    the execution graph says nothing.

    Example:
        >>> precision_label({"int8": 5, "f32": 2}), precision_label({}, "f16")
        ('int8+f32', 'f16')
    """
    kinds = [k for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n]
    return "+".join(kinds) if kinds else (hint or "unknown")


def hint_name(value) -> str:
    """``INFERENCE_PRECISION_HINT`` read back (an ``openvino.Type``) as ``f32``/``bf16``/``f16``.

    Example:
        >>> hint_name("<Type: 'bfloat16'>"), hint_name("float32")
        ('bf16', 'f32')
    """
    text = str(value).lower()
    for long, short in (("bfloat16", "bf16"), ("float16", "f16"), ("float32", "f32")):
        if long in text or text == short:
            return short
    return text


@dataclass
class IRFacts:
    """What an OpenVINO IR (``.xml`` + ``.bin``) says about itself, read without compiling.

    Attributes:
        xml, weights: the two files (``weights`` None when the graph has no constants).
        weights_bytes: the size of the ``.bin``.
        inputs, outputs: ``(name, shape, element type)`` each; -1 for a dynamic dimension.
        ops: operations of the graph, by type.
        quantized: FakeQuantize nodes (an int8 model has them).
    """

    xml: Path
    weights: Path | None
    weights_bytes: int
    inputs: list[tuple[str, list[int], str]] = field(default_factory=list)
    outputs: list[tuple[str, list[int], str]] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    quantized: int = 0


def _ports(ports) -> list[tuple[str, list[int], str]]:
    out = []
    for p in ports:
        shape = [d.get_length() if d.is_static else -1 for d in p.get_partial_shape()]
        out.append((p.get_any_name(), shape, p.get_element_type().get_type_name()))
    return out


def weights_file(xml: Path) -> Path | None:
    """The ``.bin`` an IR reads its weights from (beside it, same stem), or None when the
    graph has no constants; a missing one is a one-line RuntimeFailure.

    Example:
        >>> weights_file(Path("model.xml"))  # doctest: +SKIP
        PosixPath('model.bin')
    """
    text = xml.read_bytes()
    if b'offset="' not in text:  # no Const reads the .bin: OpenVINO needs none
        return None
    weights = xml.with_suffix(".bin")
    if not weights.is_file():
        raise RuntimeFailure(f"{xml.name} is an OpenVINO IR whose weights file {weights.name} "
                             f"is not beside it: an IR is two files, copy {weights.name} next "
                             "to it (or export again).")
    return weights


def ir_facts(path: str | Path) -> IRFacts:
    """An IR's inputs, outputs, ops and weights file, read with ``Core.read_model``.

    Raises:
        RuntimeFailure: OpenVINO missing, the ``.bin`` missing, or the IR unreadable.

    Example:
        >>> ir_facts("out/m-openvino-int8.xml").quantized > 0  # doctest: +SKIP
        True
    """
    xml = Path(path)
    weights = weights_file(xml)
    try:
        model = core().read_model(str(xml))
    except RuntimeFailure:
        raise
    except Exception as e:
        raise RuntimeFailure(f"OpenVINO cannot read {xml.name}: {clean_message(e)}") from None
    ops = Counter(op.get_type_name() for op in model.get_ops())
    return IRFacts(xml, weights, weights.stat().st_size if weights else 0,
                   _ports(model.inputs), _ports(model.outputs), dict(sorted(ops.items())),
                   ops.get("FakeQuantize", 0))
