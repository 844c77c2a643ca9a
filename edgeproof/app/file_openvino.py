"""An OpenVINO IR (``.xml`` + its ``.bin``) as ``edgeproof info`` reads it: OpenVINO's
``Core.read_model`` (never ``compile_model``), and the devices OpenVINO sees here.

Shapes keep OpenVINO's partial dimensions (``?`` dynamic, ``1..8`` a range). The integer
kind follows from the graph: FakeQuantize nodes are an int8 model (NNCF, the
``openvino-int8`` export), integer constants feeding a Convert are int8-compressed
weights with float compute, f16 constants are float16-compressed weights
(``openvino.save_model``'s default), decompressed to f32 by the plugin. The producer is
the IR's own ``rt_info`` (the OpenVINO version that wrote it, the source framework).

Example:
    >>> read_openvino(Path("m-openvino-fp32.xml")).details["devices"]  # doctest: +SKIP
    ['CPU']
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edgeproof.app.file_info import CompanionFile, FileInfo, TensorSummary, dims
from edgeproof.bench.openvino_graph import clean_message, core, weights_file
from edgeproof.errors import EdgeproofError, ModelError
from edgeproof.quiet import quiet_native

_SKIP = ("Parameter", "Result", "Constant")
_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "u8": "uint8", "i8": "int8",
           "i32": "int32", "i64": "int64", "boolean": "bool"}


def _port(p) -> TensorSummary:
    shape = p.get_partial_shape()
    sizes, names = [], []
    for d in shape:
        sizes.append(d.get_length() if d.is_static else -1)
        names.append("" if d.is_static or str(d) == "?" else str(d))
    kind = p.get_element_type().get_type_name()
    return TensorSummary(p.get_any_name(), dims(sizes, names), _DTYPES.get(kind, kind))


def integer_kind(model) -> tuple[str, str]:
    """(kind, why) of a read (not compiled) OpenVINO model (see the module docstring).

    Example:
        >>> integer_kind(core().read_model("m-openvino-int8.xml"))[0]  # doctest: +SKIP
        'full-integer'
    """
    ops = list(model.get_ops())
    fq = sum(op.get_type_name() == "FakeQuantize" for op in ops)
    if fq:
        return "full-integer", f"{fq} FakeQuantize nodes: the plugin runs the quantized parts in int8"
    consts = Counter(op.get_element_type().get_type_name() for op in ops
                     if op.get_type_name() == "Constant")
    if consts["u8"] or consts["i8"] or consts["u4"] or consts["i4"]:
        return "dynamic-range", "int8/int4-compressed weights, decompressed for float compute"
    if consts["f16"]:
        return "float16", ("float16-compressed weights (openvino.save_model's default), "
                           "decompressed to f32 by the plugin")
    return "float", "every constant is f32"


def _rt(model, *path) -> str | None:
    try:
        return str(model.get_rt_info(list(path)).astype(str)) if model.has_rt_info(list(path)) \
            else None
    except Exception:  # rt_info layouts differ between OpenVINO versions: a bonus, not a fact
        return None


def _devices() -> list[str]:
    try:
        return list(core().available_devices)
    except Exception as e:  # a plugin that fails to enumerate: say so, do not fail the read
        return [f"unknown ({clean_message(e, 80)})"]


def read_openvino(p: Path) -> FileInfo:
    """``p`` (an IR's ``.xml``) as a ``FileInfo`` (see the module docstring).

    Raises:
        ModelError: OpenVINO missing, the ``.bin`` missing, or an unreadable IR.
    """
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if b"<net" not in head:  # else OpenVINO tries every frontend on it, each logging natively
        raise ModelError(f"{p.name} is not an OpenVINO IR (no <net> element at its start): "
                         "truncated, or another XML file.")
    try:
        weights = weights_file(p)
        with quiet_native():
            model = core().read_model(str(p))
    except EdgeproofError as e:
        raise ModelError(str(e)) from None
    except Exception as e:
        raise ModelError(f"OpenVINO cannot read {p.name}: {clean_message(e)}; truncated, or "
                         "not an IR.") from None
    files = [CompanionFile(str(weights), "weights", True, weights.stat().st_size)] if weights \
        else []
    kind, why = integer_kind(model)
    version = _rt(model, "Runtime_version")
    framework = _rt(model, "conversion_parameters", "framework")
    ops = Counter(op.get_type_name() for op in model.get_ops()
                  if op.get_type_name() not in _SKIP)
    return FileInfo(str(p), "openvino", "OpenVINO IR",
                    f"OpenVINO {version}" + (f" (from {framework})" if framework else "")
                    if version else None,
                    [_port(i) for i in model.inputs], [_port(o) for o in model.outputs], kind,
                    why, dict(ops), files=files,
                    details={"devices": _devices(), "name": model.get_friendly_name()})
