"""The gate: the one rule that says whether an export answers like its reference, and fits.

One frozen ``Gate`` decides everything that depends on parity: the exit code of
``bench`` / ``parity`` / ``export --min-agreement``, which exports ``run`` and ``bench``
may recommend, and which candidates ``optimize`` may choose. A limit left ``None`` is not
checked, and the message of a failure names exactly the rule that failed.

Optional microcontroller budgets make fitting part of the same gate: ``ram_budget`` holds
the tensor arena (a row's ``micro.arena_bytes``: measured on TFLM, or computed from tensor
lifetimes and then labelled so) and ``flash_budget`` the file (``micro.flash_bytes``, else
``size_bytes``). Sizes parse with ``parse_bytes``: B, KB, KiB, MB, MiB, where KB = KiB =
1024 bytes, as microcontroller datasheets count SRAM and flash (and as edgeproof's tables
print sizes).

Example:
    >>> g = Gate(min_agreement=0.99, max_accuracy_drop=0.005)
    >>> g.failures({"top1_agreement": 0.97, "accuracy_delta": -0.001})
    ['top-1 agreement 97.00% < 99.00%']
    >>> Gate(min_agreement=0.99, max_accuracy_drop=None).describe()
    'top-1 agreement >= 99%'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from edgeproof.errors import UsageError

DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MAX_ACCURACY_DROP = 0.005  # a fraction of the test images: half a percentage point
REFERENCE_FORMATS = ("keras", "saved_model")  # what exports are compared with, not shipped
UNITS = {"b": 1, "kb": 1024, "kib": 1024, "mb": 1024 ** 2, "mib": 1024 ** 2}
UNITS_HELP = "B, KB, KiB, MB, MiB; KB = KiB = 1024 bytes, as microcontroller datasheets count"


def _get(row, key):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def flash_bytes(row) -> int | None:
    """The bytes a row's model takes in flash: TFLM's figure, else the file's size.

    Example:
        >>> flash_bytes({"micro": {}, "size_bytes": 1000})
        1000
    """
    return (_get(row, "micro") or {}).get("flash_bytes") or _get(row, "size_bytes")


def arena_note(micro: dict) -> str:
    """How an arena figure was had, for printing after it: nothing when TFLM measured it,
    `` (computed)`` for a lower bound from tensor lifetimes.

    Example:
        >>> arena_note({"arena_kind": "computed"}), arena_note({})
        (' (computed)', '')
    """
    kind = micro.get("arena_kind") or "measured"
    return "" if kind == "measured" else f" ({kind})"


def parse_bytes(text, what: str = "size") -> int:
    """A size like ``256KB``, ``1MiB``, ``1.5 MB`` or ``4096`` (bytes) as bytes.

    Example:
        >>> parse_bytes("256KB"), parse_bytes("1 MiB"), parse_bytes("1000")
        (262144, 1048576, 1000)
        >>> parse_bytes("2 GB", "--ram-budget")
        Traceback (most recent call last):
        ...
        edgeproof.errors.UsageError: --ram-budget must be a size like 256KB or 1MB (B, KB, KiB, MB, MiB; KB = KiB = 1024 bytes, as microcontroller datasheets count); got '2 GB'.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = UNITS.get((m.group(2) or "b").lower()) if m else None
    if unit is None or float(m.group(1)) * unit < 1:
        raise UsageError(f"{what} must be a size like 256KB or 1MB ({UNITS_HELP}); got {text!r}.")
    return int(round(float(m.group(1)) * unit))


def fmt_bytes(n: int) -> str:
    """Bytes as B / KB / MB (powers of 1024, the budgets' units), three digits.

    Example:
        >>> fmt_bytes(317440), fmt_bytes(262144), fmt_bytes(20016), fmt_bytes(1258291)
        ('310 KB', '256 KB', '19.5 KB', '1.2 MB')
    """
    for unit, size in (("MB", 1024 ** 2), ("KB", 1024)):
        if n >= size:
            v = n / size
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{n} B"


@dataclass(frozen=True)
class Gate:
    """Limits an export must keep against its reference (fractions, not points).

    Args:
        min_agreement: lowest top-1 agreement with the reference (None: not checked).
        max_accuracy_drop: largest accuracy drop below the reference (None: not checked).
        ram_budget: largest tensor arena, bytes (None: not checked).
        flash_budget: largest file, bytes (None: not checked).
    """

    min_agreement: float | None = DEFAULT_MIN_AGREEMENT
    max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP
    ram_budget: int | None = None
    flash_budget: int | None = None

    def __repr__(self) -> str:  # budgets only when set: the common gate reads as before
        extra = "".join(f", {k}={v}" for k, v in (("ram_budget", self.ram_budget),
                                                  ("flash_budget", self.flash_budget))
                        if v is not None)
        return (f"Gate(min_agreement={self.min_agreement}, "
                f"max_accuracy_drop={self.max_accuracy_drop}{extra})")

    @classmethod
    def from_flags(cls, min_agreement: float | None, max_accuracy_drop: float | None,
                   default: bool = True, ram_budget: int | None = None,
                   flash_budget: int | None = None) -> "Gate":
        """The gate of a command's flags: the limits given; when no parity limit is given,
        the default ones (``default``) or none; budgets as given.

        Example:
            >>> Gate.from_flags(0.98, None)
            Gate(min_agreement=0.98, max_accuracy_drop=None)
            >>> Gate.from_flags(None, None, ram_budget=262144)
            Gate(min_agreement=0.99, max_accuracy_drop=0.005, ram_budget=262144)
        """
        if min_agreement is None and max_accuracy_drop is None:
            base = cls() if default else cls(None, None)
            min_agreement, max_accuracy_drop = base.min_agreement, base.max_accuracy_drop
        return cls(min_agreement, max_accuracy_drop, ram_budget, flash_budget)

    @property
    def has_budgets(self) -> bool:
        return self.ram_budget is not None or self.flash_budget is not None

    @property
    def checks_anything(self) -> bool:
        return self.min_agreement is not None or self.max_accuracy_drop is not None

    def failures(self, row) -> list[str]:
        """Why ``row`` (a BenchRow, a result dict or parity numbers) fails; empty: it passes.

        Example:
            >>> Gate(None, 0.005).failures({"top1_agreement": 0.5, "accuracy_delta": -0.02})
            ['accuracy -2.00 pt, more than 0.50 pt down']
        """
        return self.parity_failures(row) + self.budget_failures(row)

    def parity_failures(self, row) -> list[str]:
        """The agreement and accuracy rules ``row`` breaks (no budgets)."""
        agreement = _get(row, "top1_agreement")
        if agreement is None:
            return ["no parity numbers (no reference)"] if self.checks_anything else []
        out = []
        if self.min_agreement is not None and agreement < self.min_agreement:
            out.append(f"top-1 agreement {100 * agreement:.2f}% < "
                       f"{100 * self.min_agreement:.2f}%")
        delta = _get(row, "accuracy_delta")
        if self.max_accuracy_drop is not None and delta is not None \
                and -delta > self.max_accuracy_drop + 1e-12:
            out.append(f"accuracy {100 * delta:+.2f} pt, more than "
                       f"{100 * self.max_accuracy_drop:.2f} pt down")
        return out

    def budget_failures(self, row) -> list[str]:
        """Why ``row`` does not fit the budgets (its ``micro`` figures); empty: it fits.

        Example:
            >>> Gate(None, None, ram_budget=262144).budget_failures(
            ...     {"micro": {"arena_bytes": 317440, "arena_kind": "measured"}})
            ['arena 310 KB > 256 KB budget (54 KB over)']
        """
        micro, out = _get(row, "micro") or {}, []
        if self.ram_budget is not None:
            arena = micro.get("arena_bytes")
            if arena is None:
                why = micro.get("error") or "not measured (run it on tflm: --target mcu)"
                out.append(f"no arena figure for the RAM budget: {why}")
            elif arena > self.ram_budget:
                out.append(f"arena {fmt_bytes(arena)}{arena_note(micro)} > "
                           f"{fmt_bytes(self.ram_budget)} "
                           f"budget ({fmt_bytes(arena - self.ram_budget)} over)")
        flash = flash_bytes(row)
        if self.flash_budget is not None and flash is not None and flash > self.flash_budget:
            out.append(f"flash {fmt_bytes(flash)} > {fmt_bytes(self.flash_budget)} budget "
                       f"({fmt_bytes(flash - self.flash_budget)} over)")
        return out

    def overshoot(self, row) -> int:
        """Bytes over the budgets in all (0: fits), for naming the closest candidate.

        Example:
            >>> Gate(ram_budget=1000).overshoot({"micro": {"arena_bytes": 1200}})
            200
        """
        micro = _get(row, "micro") or {}
        arena = micro.get("arena_bytes")
        flash = flash_bytes(row) or 0
        over = max(0, flash - self.flash_budget) if self.flash_budget is not None else 0
        if self.ram_budget is not None:
            over += max(0, arena - self.ram_budget) if arena is not None else 1 << 40
        return over

    def passes(self, row) -> bool:
        return not self.failures(row)

    def describe(self) -> str:
        """The rules as one phrase, for messages and reports."""
        parts = []
        if self.min_agreement is not None:
            parts.append(f"top-1 agreement >= {100 * self.min_agreement:g}%")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {100 * self.max_accuracy_drop:g} pt")
        if self.ram_budget is not None:
            parts.append(f"arena <= {fmt_bytes(self.ram_budget)}")
        if self.flash_budget is not None:
            parts.append(f"flash <= {fmt_bytes(self.flash_budget)}")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict:
        """The limits (budgets only when set, in bytes)."""
        return {k: v for k, v in asdict(self).items()
                if v is not None or k in ("min_agreement", "max_accuracy_drop")}


def gate_section(gate: Gate, rows, enforced: bool) -> dict:
    """report.json's ``gate``: the limits, whether every measured row passed, and each
    failure as ``format/runtime: rule``. ``enforced``: the command exits 1 on a failure.

    Example:
        >>> gate_section(Gate(0.99, None), [{"format": "onnx-int8", "runtime": "onnxruntime",
        ...     "status": "ok", "top1_agreement": 0.98}], True)["failures"]
        ['onnx-int8/onnxruntime: top-1 agreement 98.00% < 99.00%']
    """
    fails, seen = [], set()
    for r in rows:  # batch sizes of one artifact share its parity numbers: judge it once
        if _get(r, "status") != "ok" or _get(r, "top1_agreement") is None \
                or _get(r, "artifact") in seen:
            continue
        seen.add(_get(r, "artifact"))
        # A reference model is not a deployment candidate: budgets do not judge it.
        rules = gate.parity_failures(r) if _get(r, "format") in REFERENCE_FORMATS \
            else gate.failures(r)
        fails += [f"{_get(r, 'format')}/{_get(r, 'runtime')}: {f}" for f in rules]
    return {**gate.to_dict(), "passed": not fails, "failures": fails, "enforced": enforced}
