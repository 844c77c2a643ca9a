"""The gate: the one rule that says whether an export answers like its reference.

One frozen ``Gate`` decides everything that depends on parity: the exit code of
``bench`` / ``parity`` / ``export --min-agreement``, which exports ``run`` and ``bench``
may recommend, and which candidates ``optimize`` may choose. A limit left ``None`` is not
checked, and the message of a failure names exactly the rule that failed.

Example:
    >>> g = Gate(min_agreement=0.99, max_accuracy_drop=0.005)
    >>> g.failures({"top1_agreement": 0.97, "accuracy_delta": -0.001})
    ['top-1 agreement 97.00% < 99.00%']
    >>> Gate(min_agreement=0.99).describe()
    'top-1 agreement >= 99%'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MAX_ACCURACY_DROP = 0.005  # a fraction of the test images: half a percentage point


def _get(row, key):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


@dataclass(frozen=True)
class Gate:
    """Limits an export must keep against its reference (fractions, not points).

    Args:
        min_agreement: lowest top-1 agreement with the reference (None: not checked).
        max_accuracy_drop: largest accuracy drop below the reference (None: not checked).
    """

    min_agreement: float | None = DEFAULT_MIN_AGREEMENT
    max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP

    @classmethod
    def from_flags(cls, min_agreement: float | None, max_accuracy_drop: float | None,
                   default: bool = True) -> "Gate":
        """The gate of a command's flags: the limits given; when none is given, the
        defaults (``default``) or nothing.

        Example:
            >>> Gate.from_flags(0.98, None)
            Gate(min_agreement=0.98, max_accuracy_drop=None)
            >>> Gate.from_flags(None, None)
            Gate(min_agreement=0.99, max_accuracy_drop=0.005)
        """
        if min_agreement is None and max_accuracy_drop is None:
            return cls() if default else cls(None, None)
        return cls(min_agreement, max_accuracy_drop)

    @property
    def checks_anything(self) -> bool:
        return self.min_agreement is not None or self.max_accuracy_drop is not None

    def failures(self, row) -> list[str]:
        """Why ``row`` (a BenchRow, a result dict or parity numbers) fails; empty: it passes.

        Example:
            >>> Gate(None, 0.005).failures({"top1_agreement": 0.5, "accuracy_delta": -0.02})
            ['accuracy -2.00 pt, more than 0.50 pt down']
        """
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

    def passes(self, row) -> bool:
        return not self.failures(row)

    def describe(self) -> str:
        """The rules as one phrase, for messages and reports."""
        parts = []
        if self.min_agreement is not None:
            parts.append(f"top-1 agreement >= {100 * self.min_agreement:g}%")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {100 * self.max_accuracy_drop:g} pt")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict:
        return asdict(self)


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
        fails += [f"{_get(r, 'format')}/{_get(r, 'runtime')}: {f}" for f in gate.failures(r)]
    return {**gate.to_dict(), "passed": not fails, "failures": fails, "enforced": enforced}
