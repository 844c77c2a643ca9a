"""The gate's answer on one row, and how the parity rules reach it.

A ``Verdict`` is one of three answers, *passes*, *fails* or *undecided*, with the rules
not met in words and the bounds it stands on. ``judge_parity`` applies the agreement
and accuracy-drop limits to a row: on its confidence bounds (``bench.bounds``) when the
row has image counts and the gate decides on bounds, else on its measured figures (the
point gate, and rows from older reports, which have no counts). ``bench.gate.Gate`` adds
the budgets and is what callers use.

Example:
    >>> row = {"top1_agreement": 0.97, "parity_counts": {"n": 1000, "agree": 970}}
    >>> fails, unsure, bounds = judge_parity(row, Limits(0.99, None, 0.95))
    >>> fails[0]
    'top-1 agreement 97.00% of 1,000: at most 97.83% with 95% confidence, below 99.00%'
    >>> judge_parity(row, Limits(0.99, None, 0.95, point=True))[0]
    ['top-1 agreement 97.00% < 99.00%']
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from edgeproof.bench.bounds import PairedCounts, agreement_bounds, drop_bounds

EPS = 1e-12  # a figure exactly at a limit meets it


def _get(row, key):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def conf(level: float) -> str:
    """``95% confidence``, ``99.75% confidence``."""
    return f"{100 * level:.4g}% confidence"


@dataclass(frozen=True)
class Verdict:
    """The gate's answer on one row: ``answer`` (passes | fails | undecided), the rules
    not met in words (``reasons``), and the bounds it decided on: agreement
    (``agreement_low`` / ``agreement_high``) and accuracy drop (``drop_low`` /
    ``drop_high``), each one-sided at ``level``, over ``n`` images. ``basis``: ``bound``,
    or ``point`` (``--gate point``, or a row without image counts)."""

    answer: str
    reasons: tuple[str, ...] = ()
    basis: str = "bound"
    level: float | None = None
    n: int | None = None
    agreement_low: float | None = None
    agreement_high: float | None = None
    drop_low: float | None = None
    drop_high: float | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """A verdict from a JSON row.

        Example:
            >>> v = Verdict("undecided", ("x",), level=0.95, n=10)
            >>> Verdict.from_dict(v.to_dict()) == v
            True
        """
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        return cls(**{**kw, "reasons": tuple(kw.get("reasons") or ())})

    def cell(self) -> str:
        """The table's cell: the answer and the agreement bound it stands on.

        Example:
            >>> Verdict("passes", agreement_low=0.9912).cell()
            'passes (>= 99.12%)'
            >>> Verdict("fails", basis="point").cell()
            'fails (point)'
        """
        if self.basis != "bound":
            return f"{self.answer} (point)"
        if self.agreement_low is None:
            return self.answer
        bound = f">= {pct(self.agreement_low)}" if self.answer != "fails" \
            else f"<= {pct(self.agreement_high)}"
        return f"{self.answer} ({bound})"


@dataclass(frozen=True)
class Limits:
    """The parity limits of a gate (fractions; None: not checked), the confidence each
    bound is at, and whether to decide on the measured figures instead (``point``)."""

    min_agreement: float | None
    max_accuracy_drop: float | None
    level: float
    point: bool = False

    @property
    def checks_anything(self) -> bool:
        return self.min_agreement is not None or self.max_accuracy_drop is not None


def bounds_of(counts: PairedCounts, level: float) -> dict:
    """The Verdict's bound fields for ``counts`` at ``level``.

    Example:
        >>> bounds_of(PairedCounts(299, 299), 0.95)["agreement_low"]
        0.990031
    """
    lo, hi = agreement_bounds(counts.agree, counts.n, level)
    out = {"level": round(level, 6), "n": counts.n, "agreement_low": round(lo, 6),
           "agreement_high": round(hi, 6)}
    if counts.paired:
        dlo, dhi = drop_bounds(counts, level)
        out.update(drop_low=round(dlo, 6), drop_high=round(dhi, 6))
    return out


def judge_parity(row, limits: Limits) -> tuple[list[str], list[str], dict]:
    """(rules proven broken, rules neither proven nor disproven, the Verdict's bound and
    basis fields) of ``row`` under ``limits``."""
    agreement = _get(row, "top1_agreement")
    if agreement is None:
        return (["no parity numbers (no reference)"] if limits.checks_anything else []), [], {}
    counts = PairedCounts.from_dict(_get(row, "parity_counts"))
    bounds = bounds_of(counts, limits.level) if counts and counts.n else {}
    if limits.point or not bounds:
        return point_failures(row, limits), [], {**bounds, "basis": "point"}
    fails, unsure = [], []
    where, level = f"{counts.n:,}", conf(limits.level)
    low, high, floor = bounds["agreement_low"], bounds["agreement_high"], limits.min_agreement
    if floor is not None and high < floor - EPS:
        fails.append(f"top-1 agreement {pct(agreement)} of {where}: at most {pct(high)} with "
                     f"{level}, below {pct(floor)}")
    elif floor is not None and low < floor - EPS:
        unsure.append(f"top-1 agreement {pct(agreement)} of {where}: at least {pct(low)} with "
                      f"{level}, not proven >= {pct(floor)} (undecided)")
    cap = limits.max_accuracy_drop
    if cap is not None and "drop_low" in bounds:
        dlo, dhi, delta = bounds["drop_low"], bounds["drop_high"], -counts.drop
        said = f"accuracy {100 * delta:+.2f} pt on {where}"
        if dlo > cap + EPS:
            fails.append(f"{said}: at least {100 * dlo:.2f} pt down with {level}, more than "
                         f"{100 * cap:.2f} pt")
        elif dhi > cap + EPS:
            unsure.append(f"{said}: up to {100 * dhi:.2f} pt down with {level}, not proven "
                          f"<= {100 * cap:.2f} pt (undecided)")
    return fails, unsure, bounds


def point_failures(row, limits: Limits) -> list[str]:
    """The rules the measured figures break (``--gate point``, and rows without counts).

    Example:
        >>> point_failures({"top1_agreement": 0.995, "accuracy_delta": -0.02},
        ...                Limits(0.99, 0.005, 0.95))
        ['accuracy -2.00 pt, more than 0.50 pt down']
    """
    agreement, out = _get(row, "top1_agreement"), []
    if limits.min_agreement is not None and agreement < limits.min_agreement:
        out.append(f"top-1 agreement {pct(agreement)} < {pct(limits.min_agreement)}")
    delta = _get(row, "accuracy_delta")
    if limits.max_accuracy_drop is not None and delta is not None \
            and -delta > limits.max_accuracy_drop + EPS:
        out.append(f"accuracy {100 * delta:+.2f} pt, more than "
                   f"{100 * limits.max_accuracy_drop:.2f} pt down")
    return out
