"""What an ExecuTorch ``.pte`` says about itself: its method, its input (planned size,
dtype, dim order), the delegates that run its partitions, the operators left to
ExecuTorch's kernels, and which of those this runtime does not have.

Read with ExecuTorch's own deserializer (``executorch.exir._serialize``: the program
flatbuffer, its segments left alone), so nothing runs. The operator names are the
runtime's (``aten::mean.out``), the ones a load looks up in the kernel registry: a name
missing there is a ``.pte`` that fails to load ("Missing operator"), named here before
the load is tried. The share of the graph inside XNNPACK is measured at export time on
the lowered program, and read from the manifest (``conversion.executorch.delegation``).

``pte_facts`` is what ``edgeproof info`` shows for a ``.pte`` and what the executorch
runtime reads before it loads one.

Example:
    >>> dim_order_name([0, 2, 3, 1])
    'channels_last'
    >>> facts = pte_facts("net-executorch-int8.pte")  # doctest: +SKIP
    >>> facts.delegates, facts.kernel_ops, facts.dim_order  # doctest: +SKIP
    ({'XnnpackBackend': 2}, {'aten::mean.out': 1}, 'contiguous')
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeproof.errors import ModelError, RuntimeFailure, first_line
from edgeproof.manifest import find_manifest
from edgeproof.quiet import quiet_native

INSTALL = 'pip install "edgeproof[torch]"'
_ORDERS = {(0, 1, 2, 3): "contiguous", (0, 2, 3, 1): "channels_last"}
# ExecuTorch's ScalarType codes (schema/scalar_type.fbs) of the dtypes image models take.
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
           6: "float32", 7: "float64", 11: "bool", 15: "bfloat16"}


@dataclass
class PteFacts:
    """One ``.pte`` file's facts.

    Attributes:
        method: the method read (``forward``).
        input_sizes: the input's planned sizes (a dynamic batch: its upper bound).
        input_dtype: its dtype (``float32``).
        input_dim_order: the memory layout the program expects its input in, as a dim
            order (``[0, 1, 2, 3]``: contiguous; ``[0, 2, 3, 1]``: channels_last).
        delegates: backend id -> partitions it runs (``{"XnnpackBackend": 2}``).
        kernel_ops: operators run by ExecuTorch's own kernels, by name and count.
        missing_ops: those of them this installed runtime has no kernel for.
        delegation: the export-time record (share inside XNNPACK, the operators left
            out), from the manifest; None without one.
        input_dynamic: the input's sizes may shrink below the planned ones (a dynamic
            batch); False: they are fixed.
        output_sizes: the first output's planned sizes (``[32, 10]``).
        output_dtype: its dtype.
    """

    method: str
    input_sizes: list[int]
    input_dtype: str
    input_dim_order: list[int]
    delegates: dict[str, int] = field(default_factory=dict)
    kernel_ops: dict[str, int] = field(default_factory=dict)
    missing_ops: list[str] = field(default_factory=list)
    delegation: dict | None = None
    input_dynamic: bool = False
    output_sizes: list[int] = field(default_factory=list)
    output_dtype: str = "float32"

    @property
    def max_batch(self) -> int:
        """The most images one call takes (the input's planned batch)."""
        return int(self.input_sizes[0]) if self.input_sizes else 1

    @property
    def dim_order(self) -> str:
        """``contiguous``, ``channels_last`` or the order itself (``0,3,1,2``)."""
        return dim_order_name(self.input_dim_order)

    def to_dict(self) -> dict:
        """The facts as JSON-ready data (the dim order's name and the max batch too)."""
        return {**asdict(self), "dim_order": self.dim_order, "max_batch": self.max_batch}


def dim_order_name(order) -> str:
    """A dim order as people name it.

    Example:
        >>> dim_order_name([0, 1, 2, 3]), dim_order_name([0, 3, 1, 2])
        ('contiguous', '0,3,1,2')
    """
    order = tuple(int(d) for d in order or ())
    if not order or order == tuple(range(len(order))):
        return "contiguous"
    return _ORDERS.get(order, ",".join(map(str, order)))


@functools.lru_cache(maxsize=1)
def registered_operators() -> frozenset[str]:
    """The operator names this installed ExecuTorch runtime has kernels for.

    Example:
        >>> "aten::mean.out" in registered_operators()  # doctest: +SKIP
        True
    """
    return frozenset(executorch_lib()._get_operator_names())


def executorch_lib():
    """ExecuTorch's runtime bindings, or a one-line RuntimeFailure naming the extra.

    Example:
        >>> executorch_lib().__name__  # doctest: +SKIP
        'executorch.extension.pybindings.portable_lib'
    """
    try:
        with quiet_native():  # it imports torch, which logs while it loads
            from executorch.extension.pybindings import portable_lib
    except ImportError:
        raise RuntimeFailure(f"The executorch runtime needs ExecuTorch, which is not "
                             f"installed: {INSTALL}.") from None
    return portable_lib


def _program(data: bytes):
    try:
        with quiet_native():
            from executorch.exir._serialize._program import deserialize_pte_binary

            return deserialize_pte_binary(data).program
    except ImportError:
        raise RuntimeFailure(f"Reading a .pte needs ExecuTorch, which is not installed: "
                             f"{INSTALL}.") from None
    except Exception as e:
        raise RuntimeFailure(f"not a readable ExecuTorch program ({first_line(e, 160)}); "
                             "re-export it.") from None


def _op_name(op) -> str:
    return f"{op.name}.{op.overload}" if op.overload else op.name


def _calls(plan) -> tuple[Counter, Counter]:
    kernels, delegates = Counter(), Counter()
    for chain in plan.chains:
        for ins in chain.instructions:
            kind = type(ins.instr_args).__name__
            if kind == "KernelCall":
                kernels[_op_name(plan.operators[ins.instr_args.op_index])] += 1
            elif kind == "DelegateCall":
                delegates[plan.delegates[ins.instr_args.delegate_index].id] += 1
    return kernels, delegates


def pte_facts(source, method: str = "forward") -> PteFacts:
    """The facts of a ``.pte`` (a path or its bytes); see the module docstring.

    Raises:
        RuntimeFailure: ExecuTorch missing, a file it cannot read, no such method.

    Example:
        >>> pte_facts("net-executorch-fp32.pte").max_batch  # doctest: +SKIP
        32
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    program = _program(data)
    plans = {p.name: p for p in program.execution_plan}
    if method not in plans:
        raise RuntimeFailure(f"the program has no method {method!r} (it has "
                             f"{', '.join(plans) or 'none'}).")
    plan = plans[method]
    tensor = plan.values[plan.inputs[0]].val if plan.inputs else None
    out = plan.values[plan.outputs[0]].val if plan.outputs else None
    kernels, delegates = _calls(plan)
    return PteFacts(
        method=method, input_sizes=[int(s) for s in getattr(tensor, "sizes", [])],
        input_dtype=_DTYPES.get(int(getattr(tensor, "scalar_type", 6)), "other"),
        input_dim_order=[int(d) for d in getattr(tensor, "dim_order", ())],
        delegates=dict(delegates), kernel_ops=dict(sorted(kernels.items())),
        missing_ops=sorted(set(kernels) - registered_operators()),
        delegation=_delegation(source),
        input_dynamic=int(getattr(tensor, "shape_dynamism", 0) or 0) != 0,  # 0: STATIC
        output_sizes=[int(s) for s in getattr(out, "sizes", [])],
        output_dtype=_DTYPES.get(int(getattr(out, "scalar_type", 6)), "other"))


def _delegation(source) -> dict | None:
    if not isinstance(source, (str, Path)):
        return None
    try:
        manifest = find_manifest(source)
    except ModelError:
        return None
    return ((manifest.conversion or {}).get("executorch") or {}).get("delegation")


def missing_line(name: str, missing: list[str], backends: list[str] = ()) -> str:
    """The one line for a ``.pte`` whose operators (or delegate backends) this runtime lacks.

    Example:
        >>> missing_line("m.pte", ["aten::erf.out"])
        'm.pte needs operator aten::erf.out, which this ExecuTorch runtime has no kernel for (missing operator); export it with that op inside the XNNPACK delegate, or run it on a runtime built with that kernel.'
        >>> missing_line("m.pte", [], ["VulkanBackend"])
        'm.pte needs backend VulkanBackend, which this ExecuTorch runtime was not built with; export it for XNNPACK, or run it on a runtime built with that backend.'
    """
    if not missing:
        return (f"{name} needs backend {', '.join(backends)}, which this ExecuTorch runtime was "
                "not built with; export it for XNNPACK, or run it on a runtime built with that "
                "backend.")
    what = "operator" if len(missing) == 1 else "operators"
    return (f"{name} needs {what} {', '.join(missing)}, which this ExecuTorch runtime has no "
            "kernel for (missing operator); export it with that op inside the XNNPACK "
            "delegate, or run it on a runtime built with that kernel.")
