"""The gate: the one rule that says whether an export answers like its reference, and fits.

One frozen ``Gate`` decides everything that depends on parity: the exit code of
``bench`` / ``parity`` / ``export``'s check, which exports ``run`` and ``bench`` may
recommend, and which candidates ``optimize`` may choose. A limit left ``None`` is not
checked, and each reason names exactly the rule that was not met.

**Three answers** (``Verdict``): an export *passes* when the gate proves it meets every
limit, *fails* when it proves it misses one, and is *undecided* when the images cannot
tell. By default (``mode="bound"``) the gate decides on confidence bounds from the image
counts (``bench.bounds``): it passes when the lower bound of top-1 agreement is at least
``min_agreement`` and the upper bound of the accuracy drop at most ``max_accuracy_drop``;
it fails when the upper bound of agreement is below the minimum or the lower bound of the
drop above the maximum; otherwise it is undecided. Each bound is one-sided at
``confidence`` (Clopper–Pearson for agreement, Newcombe's paired interval for the drop).
``mode="point"`` decides on the measured figures as earlier versions did (pass or fail,
never undecided). A row without image counts (an older report) is judged on its point
figures, and its verdict says so (``basis``).

**Many candidates**: when a command *chooses* one of m candidates (``optimize``'s ladder:
every rung it holds; ``bench``'s and ``run``'s recommendation: every export with parity
numbers), each is judged at ``1 - (1 - confidence) / m`` (**Bonferroni**, ``compared``),
so the chance that the choice fails on new data is at most ``1 - confidence``. A check of
one file (``parity``, ``export``'s check) is judged at ``confidence``.

Optional microcontroller budgets make fitting part of the same gate: ``ram_budget`` holds
the tensor arena (a row's ``micro.arena_bytes``: measured on TFLM, or computed from tensor
lifetimes and then labelled so) and ``flash_budget`` the file (``micro.flash_bytes``, else
``size_bytes``). Sizes parse with ``parse_bytes``: B, KB, KiB, MB, MiB, where KB = KiB =
1024 bytes, as microcontroller datasheets count SRAM and flash (and as edgeproof's tables
print sizes).

Example:
    >>> g = Gate(min_agreement=0.99, max_accuracy_drop=0.005, mode="point")
    >>> g.failures({"top1_agreement": 0.97, "accuracy_delta": -0.001})
    ['top-1 agreement 97.00% < 99.00%']
    >>> row = {"top1_agreement": 0.991, "parity_counts": {"n": 1000, "agree": 991}}
    >>> Gate(0.99, None).verdict(row).answer  # 99.1% of 1,000: at least 98.4%
    'undecided'
    >>> Gate(min_agreement=0.99, max_accuracy_drop=None).describe()
    'top-1 agreement >= 99%'
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass

from edgeproof.bench.bounds import (AGREEMENT_METHOD, CORRECTION, DEFAULT_CONFIDENCE,
                                    DROP_METHOD, corrected)
from edgeproof.bench.micro_figures import as_micro, micro_of
from edgeproof.bench.verdict import Limits, Verdict, conf, judge_parity
from edgeproof.errors import UsageError

DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MAX_ACCURACY_DROP = 0.005  # a fraction of the test images: half a percentage point
MODES = ("bound", "point")  # --gate: decide on confidence bounds, or on the measured figures
ANSWERS = ("passes", "fails", "undecided")
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
    micro = micro_of(row)
    return (micro and micro.flash_bytes) or _get(row, "size_bytes")


def arena_note(micro) -> str:
    """How an arena figure was had, for printing after it: nothing when TFLM measured it,
    `` (computed)`` for a lower bound from tensor lifetimes.

    Example:
        >>> arena_note({"arena_kind": "computed"}), arena_note({})
        (' (computed)', '')
    """
    kind = getattr(as_micro(micro), "arena_kind", None) or "measured"
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
        confidence: how sure a pass or a fail must be (each bound one-sided).
        mode: ``bound`` (decide on the bounds) or ``point`` (on the measured figures).
        compared: how many candidates a choice is made among (Bonferroni).
    """

    min_agreement: float | None = DEFAULT_MIN_AGREEMENT
    max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP
    ram_budget: int | None = None
    flash_budget: int | None = None
    confidence: float = DEFAULT_CONFIDENCE
    mode: str = "bound"
    compared: int = 1

    def __post_init__(self):
        if self.mode not in MODES:
            raise UsageError(f"Unknown gate {self.mode!r}; valid: {', '.join(MODES)}.")
        if not 0.5 < self.confidence < 1:
            raise UsageError(f"--confidence must be in (0.5, 1), e.g. 0.95; got "
                             f"{self.confidence}.")

    def __repr__(self) -> str:  # what differs from the defaults: the common gate reads short
        extra = "".join(f", {f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                        if f.name not in ("min_agreement", "max_accuracy_drop")
                        and getattr(self, f.name) != f.default)
        return (f"Gate(min_agreement={self.min_agreement}, "
                f"max_accuracy_drop={self.max_accuracy_drop}{extra})")

    @classmethod
    def from_flags(cls, min_agreement: float | None, max_accuracy_drop: float | None,
                   default: bool = True, ram_budget: int | None = None,
                   flash_budget: int | None = None, confidence: float = DEFAULT_CONFIDENCE,
                   mode: str = "bound") -> "Gate":
        """The gate of a command's flags: the limits given; when no parity limit is given,
        the default ones (``default``) or none; budgets, confidence and mode as given.

        Example:
            >>> Gate.from_flags(0.98, None)
            Gate(min_agreement=0.98, max_accuracy_drop=None)
            >>> Gate.from_flags(None, None, ram_budget=262144, mode="point")
            Gate(min_agreement=0.99, max_accuracy_drop=0.005, ram_budget=262144, mode='point')
        """
        if min_agreement is None and max_accuracy_drop is None:
            base = cls() if default else cls(None, None)
            min_agreement, max_accuracy_drop = base.min_agreement, base.max_accuracy_drop
        return cls(min_agreement, max_accuracy_drop, ram_budget, flash_budget, confidence, mode)

    def for_candidates(self, compared: int) -> "Gate":
        """This gate for a choice among ``compared`` candidates (Bonferroni).

        Example:
            >>> round(Gate().for_candidates(20).level, 6)
            0.9975
        """
        return dataclasses.replace(self, compared=max(1, int(compared)))

    @property
    def level(self) -> float:
        """The confidence each candidate's bounds are at (``confidence`` over ``compared``)."""
        return corrected(self.confidence, self.compared)

    @property
    def has_budgets(self) -> bool:
        return self.ram_budget is not None or self.flash_budget is not None

    @property
    def checks_anything(self) -> bool:
        return self.min_agreement is not None or self.max_accuracy_drop is not None

    def verdict(self, row, budgets: bool = True) -> Verdict:
        """Passes, fails or undecided for ``row`` (a BenchRow, a result dict or parity
        numbers), with the reasons and bounds; ``budgets=False``: parity only.

        Example:
            >>> Gate(0.99, None).verdict({"top1_agreement": 1.0,
            ...                           "parity_counts": {"n": 299, "agree": 299}}).answer
            'passes'
        """
        limits = Limits(self.min_agreement, self.max_accuracy_drop, self.level,
                        point=self.mode == "point")
        fails, unsure, bounds = judge_parity(row, limits)
        if budgets:
            fails = fails + self.budget_failures(row)
        answer = "fails" if fails else "undecided" if unsure else "passes"
        return Verdict(answer, tuple(fails + unsure), **bounds)

    def failures(self, row) -> list[str]:
        """Why ``row`` does not pass (rules proven broken, then those left undecided);
        empty: it passes.

        Example:
            >>> Gate(None, 0.005, mode="point").failures(
            ...     {"top1_agreement": 0.5, "accuracy_delta": -0.02})
            ['accuracy -2.00 pt, more than 0.50 pt down']
        """
        v = self.verdict(row)
        return [] if v.answer == "passes" else list(v.reasons)

    def parity_failures(self, row) -> list[str]:
        """The agreement and accuracy rules ``row`` does not pass (no budgets)."""
        v = self.verdict(row, budgets=False)
        return [] if v.answer == "passes" else list(v.reasons)

    def budget_failures(self, row) -> list[str]:
        """Why ``row`` does not fit the budgets (its ``micro`` figures); empty: it fits.

        Example:
            >>> Gate(None, None, ram_budget=262144).budget_failures(
            ...     {"micro": {"arena_bytes": 317440, "arena_kind": "measured"}})
            ['arena 310 KB > 256 KB budget (54 KB over)']
        """
        micro, out = micro_of(row), []
        if self.ram_budget is not None:
            arena = micro and micro.arena_bytes
            if arena is None:
                why = (micro and micro.tflm_error) or "not measured (run it on tflm: --target mcu)"
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
        micro = micro_of(row)
        arena = micro and micro.arena_bytes
        flash = flash_bytes(row) or 0
        over = max(0, flash - self.flash_budget) if self.flash_budget is not None else 0
        if self.ram_budget is not None:
            over += max(0, arena - self.ram_budget) if arena is not None else 1 << 40
        return over

    def passes(self, row) -> bool:
        return self.verdict(row).answer == "passes"

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

    def basis(self) -> str:
        """How the gate decides, as one phrase.

        Example:
            >>> Gate().for_candidates(20).basis()
            'on one-sided bounds at 95% confidence (Bonferroni over 20 candidates: 99.75% each)'
            >>> Gate(mode="point").basis()
            'on the measured figures (--gate point)'
        """
        if self.mode == "point":
            return "on the measured figures (--gate point)"
        each = f" (Bonferroni over {self.compared} candidates: {100 * self.level:.4g}% each)" \
            if self.compared > 1 else ""
        return f"on one-sided bounds at {conf(self.confidence)}{each}"

    def to_dict(self) -> dict:
        """The limits (budgets only when set, in bytes), how sure and how it decides.

        Example:
            >>> sorted(Gate().to_dict())[:4]
            ['compared', 'confidence', 'correction', 'level']
        """
        d = {k: v for k, v in asdict(self).items()
             if v is not None or k in ("min_agreement", "max_accuracy_drop")}
        d.update(level=round(self.level, 6), correction=CORRECTION,
                 methods={"agreement": AGREEMENT_METHOD, "accuracy_drop": DROP_METHOD})
        return d


def for_choice(gate: Gate, rows) -> Gate:
    """``gate`` for a recommendation among ``rows``: Bonferroni over the edge exports with
    parity numbers (distinct artifacts; a reference format is not a candidate).

    Example:
        >>> rows = [{"format": f, "artifact": f, "status": "ok", "top1_agreement": 1.0}
        ...         for f in ("keras", "tflite-int8", "onnx-int8")]
        >>> for_choice(Gate(), rows).compared
        2
    """
    arts = {_get(r, "artifact") for r in rows if _get(r, "status") == "ok"
            and _get(r, "top1_agreement") is not None
            and _get(r, "format") not in REFERENCE_FORMATS}
    return gate.for_candidates(len(arts))


def judge_rows(gate: Gate, rows) -> None:
    """Write ``gate``'s verdict into every measured row with parity numbers (its
    ``verdict``: the table's gate column and report.json's), in place; a reference format
    is judged on parity only.

    Example:
        >>> rows = [{"format": "onnx-int8", "status": "ok", "top1_agreement": 0.5}]
        >>> judge_rows(Gate(mode="point"), rows); rows[0]["verdict"]["answer"]
        'fails'
    """
    for r in rows:
        if _get(r, "status") != "ok" or _get(r, "top1_agreement") is None:
            continue
        v = gate.verdict(r, budgets=_get(r, "format") not in REFERENCE_FORMATS)
        if isinstance(r, dict):
            r["verdict"] = v.to_dict()
        else:
            r.verdict = v


def gate_section(gate: Gate, rows, enforced: bool) -> dict:
    """report.json's ``gate``: the limits and how it decides, its ``answer`` over every
    measured row (passes only when each passes), each failure and each undecided rule as
    ``format/runtime: rule``. ``enforced``: the command's exit code follows it.

    Example:
        >>> gate_section(Gate(0.99, None, mode="point"), [{"format": "onnx-int8",
        ...     "runtime": "onnxruntime", "status": "ok", "top1_agreement": 0.98}],
        ...     True)["failures"]
        ['onnx-int8/onnxruntime: top-1 agreement 98.00% < 99.00%']
    """
    fails, unsure, seen = [], [], set()
    for r in rows:  # batch sizes of one artifact share its parity numbers: judge it once
        if _get(r, "status") != "ok" or _get(r, "top1_agreement") is None \
                or _get(r, "artifact") in seen:
            continue
        seen.add(_get(r, "artifact"))
        # A reference model is not a deployment candidate: budgets do not judge it.
        v = gate.verdict(r, budgets=_get(r, "format") not in REFERENCE_FORMATS)
        named = [f"{_get(r, 'format')}/{_get(r, 'runtime')}: {f}" for f in v.reasons]
        (fails if v.answer == "fails" else unsure if v.answer == "undecided" else []) \
            .extend(named)
    answer = "fails" if fails else "undecided" if unsure else "passes"
    return {**gate.to_dict(), "answer": answer, "passed": answer == "passes",
            "failures": fails, "undecided": unsure, "enforced": enforced}
