"""Which export to ship: the fastest one that passes the gate.

A candidate passes when the ``Gate`` proves it keeps its limits (top-1 agreement with
the reference and accuracy drop, each when the gate checks it; by default on their
confidence bounds, ``bench.gate``); an undecided one is not recommended.

**The speed rule** (the one place it is written; docs/OPTIMIZE.md quotes it): among the
candidates that pass, the one with the lowest p50 at the smallest batch size measured is
the quickest. Every candidate whose p50 interval (``interval``: the 95% interval within
the process, widened to the thread sweep's and the repeats' measurements) overlaps the
quickest's is **tied** with it: two latencies whose intervals overlap are not called
different. A tie goes to the **more accurate** one, the higher lower bound of top-1
agreement (the measured agreement where a row has no image counts), then to the smaller
file, then to the runtime with fewer dependencies, then to the lower p50. The rule is the
same under ``--gate bound`` and ``--gate point``.

The recommendation names how sure it is: "agrees on >= 99.12% of new images with 95%
confidence; measured 99.40% on 5,000" (the bound at the gate's per-candidate level, so
the statement holds for the choice as a whole). The reference's own formats (``keras``,
``saved_model``) are not edge exports and never recommended. When nothing passes, the closest candidate (highest
agreement, then accuracy; with budgets, the one nearest to fitting) is named with its
numbers and the rules it breaks.

The ranking depends on the target. For this host (``"host"``, the default) rows of a
runtime whose latency is not host time (``Runtime.target``: TFLM's reference kernels)
are left out. For a microcontroller (``"mcu"``) only those rows count, and what passes
the gate (fitting the budgets included) is ranked by multiply-accumulates, the usual
proxy for microcontroller time, then by arena + flash; host latency plays no part.

Example:
    >>> rows = [BenchRow(format="tflite-int8", runtime="litert", status="ok", batch_size=1,
    ...                  top1_agreement=0.995, accuracy_delta=-0.001, size_bytes=10,
    ...                  latency_ms={"p50": 0.5}, accuracy=0.9, artifact="m.tflite")]
    >>> recommend(rows, Gate()).format
    'tflite-int8'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from edgeproof.bench.bounds import images_needed
from edgeproof.bench.gate import REFERENCE_FORMATS, Gate, arena_note, flash_bytes, fmt_bytes
from edgeproof.bench.micro_figures import MicroFigures
from edgeproof.bench.row import BenchRow, as_rows
from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.bench.stats import faster

TARGETS = ("host", "mcu")


@dataclass(frozen=True)
class Recommendation:
    """Which export to ship and why: its file, format and runtime, its numbers (accuracy,
    ``accuracy_delta``, ``top1_agreement``, ``latency_ms``, ``size_bytes``), the
    candidates it is tied with, and ``why`` in words. For ``mcu`` also ``micro`` and
    ``target``; ``optimize`` adds the ``rung`` and the ``validation`` numbers it was
    chosen on (its own numbers are then the test split's)."""

    artifact: str | None
    format: str
    runtime: str | None
    threads: int | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None
    top1_agreement: float | None = None
    latency_ms: dict | None = None
    size_bytes: int | None = None
    tied: list = field(default_factory=list)
    why: str = ""
    micro: MicroFigures | None = None
    target: str | None = None
    rung: str | None = None
    validation: dict | None = None
    confidence: float | None = None  # of the bounds below, for the choice as a whole
    agreement_low: float | None = None  # agreement on new images, at least
    drop_high: float | None = None  # accuracy drop on new images, at most
    test_check: dict | None = None  # optimize: what the test split says of the choice

    @classmethod
    def of(cls, row: BenchRow, why: str, **extra) -> "Recommendation":
        return cls(row.artifact, row.format, row.runtime, row.threads, row.accuracy,
                   row.accuracy_delta, row.top1_agreement, row.latency_ms, row.size_bytes,
                   why=why, **extra)

    def replace(self, **changes) -> "Recommendation":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """report.json's / optimize.json's ``recommendation`` (the mcu and optimize keys
        only when set).

        Example:
            >>> sorted(Recommendation("m.tflite", "tflite-int8", "litert").to_dict())[:3]
            ['accuracy', 'accuracy_delta', 'artifact']
        """
        d = dataclasses.asdict(self)
        d["micro"] = self.micro and self.micro.to_dict()  # its JSON keys, not every field
        why = d.pop("why")
        for key in ("micro", "target"):
            if d[key] is None:
                del d[key]
        late = ("rung", "validation", "confidence", "agreement_low", "drop_high", "test_check")
        d = {k: v for k, v in d.items() if k not in late}
        d["why"] = why
        for key in late:
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


def runtime_target(row) -> str:
    """Where ``row``'s runtime stands in for: ``host`` or ``mcu`` (TFLM).

    Example:
        >>> runtime_target(BenchRow(runtime="tflm")), runtime_target(BenchRow(runtime="litert"))
        ('mcu', 'host')
    """
    cls = RUNTIMES.rows_by_name().get(row.runtime)
    return cls.target if cls is not None else "host"


def candidates(rows, target: str = "host") -> list[BenchRow]:
    """The rows a recommendation for ``target`` may pick from: measured edge exports on
    that target's runtimes, at the smallest batch size measured."""
    ok = [r for r in as_rows(rows) if r.ok and r.latency_ms
          and r.format not in REFERENCE_FORMATS and runtime_target(r) == target]
    if not ok:
        return []
    smallest = min(r.batch_size for r in ok)
    return [r for r in ok if r.batch_size == smallest]


def infer_target(rows) -> str:
    """``mcu`` when every measured edge export ran on a microcontroller runtime (``bench
    --runtime tflm``), else ``host``.

    Example:
        >>> infer_target([BenchRow(format="tflite-int8", runtime="tflm", status="ok",
        ...                        batch_size=1, latency_ms={"p50": 2.0})])
        'mcu'
    """
    mcu = candidates(rows, "mcu")
    return "mcu" if mcu and not candidates(rows, "host") else "host"


def interval(row: BenchRow) -> tuple[float, float]:
    """The p50 interval a comparison uses: the 95% interval within the timed process,
    widened to every other measurement of the same configuration: the thread sweep's p50
    of the setting it chose (another interpreter instance, measured just before) and,
    with ``--repeat``, each process's p50. Between instances a tiny model's latency can
    move far more than within one (a 2-thread pool waking up or not), which the
    within-process interval alone would miss.

    Example:
        >>> interval(BenchRow(latency_ms={"p50": 1.0, "p50_ci": [0.98, 1.02]},
        ...                   thread_sweep={"threads": 2, "p50_ms": {"1": 1.5, "2": 0.9}}))
        (0.9, 1.02)
    """
    lat = row.latency_ms or {}
    lo, hi = (lat.get("p50_ci") or [row.p50, row.p50])[:2]
    others = list((lat.get("repeats") or {}).get("p50_ms") or [])
    sweep = row.thread_sweep or {}
    chosen = "default" if sweep.get("threads") is None else str(sweep.get("threads"))
    if sweep and chosen in (sweep.get("p50_ms") or {}) and \
            sweep.get("batch_size", row.batch_size) == row.batch_size:
        others.append(sweep["p50_ms"][chosen])
    return (min([lo, *others]), max([hi, *others]))


def _footprint(row: BenchRow) -> int:
    cls = RUNTIMES.rows_by_name().get(row.runtime)
    return cls.footprint if cls is not None else 99


def _ms(x: float) -> str:
    return f"{x:.3g}"


def agreement_floor(row, gate: Gate) -> float:
    """What the tie rule calls more accurate: the lower bound of top-1 agreement at the
    gate's level, or the measured agreement where the row has no image counts.

    Example:
        >>> agreement_floor(BenchRow(top1_agreement=1.0,
        ...                          parity_counts={"n": 299, "agree": 299}), Gate())
        0.990031
    """
    low = gate.verdict(row, budgets=False).agreement_low
    return low if low is not None else (row.top1_agreement or 0.0)


def tie_break(tied: list[BenchRow], gate: Gate) -> BenchRow:
    """The speed rule's winner among ``tied`` (module docstring): the higher agreement
    bound, then the smaller file, then fewer dependencies, then the lower p50."""
    return min(tied, key=lambda r: (-agreement_floor(r, gate), r.size_bytes or 0,
                                    _footprint(r), r.p50))


def claim(row: BenchRow, gate: Gate) -> dict:
    """How sure the gate is of ``row`` on new images: ``{confidence, agreement_low,
    drop_high, text}`` ("agrees on >= 99.12% of new images with 95% confidence; measured
    99.40% on 5,000"); bounds None under ``--gate point`` or without image counts.

    Example:
        >>> claim(BenchRow(top1_agreement=1.0, parity_counts={"n": 299, "agree": 299}),
        ...       Gate(0.99, None))["text"]
        'agrees on >= 99.00% of new images with 95% confidence; measured 100.00% on 299'
    """
    v = gate.verdict(row, budgets=False)
    measured = f"measured {100 * (row.top1_agreement or 0):.2f}%" + \
        (f" on {v.n:,}" if v.n else "")
    if v.basis != "bound" or v.agreement_low is None:
        return {"confidence": None, "agreement_low": None, "drop_high": None,
                "text": f"{measured} (decided {gate.basis()})"}
    floor = math.floor(v.agreement_low * 1e4) / 1e4  # never round a bound up
    text = f"agrees on >= {100 * floor:.2f}% of new images"
    if gate.max_accuracy_drop is not None and v.drop_high is not None:
        text += f" and loses at most {100 * max(0.0, v.drop_high):.2f} pt of accuracy"
    return {"confidence": gate.confidence, "agreement_low": v.agreement_low,
            "drop_high": v.drop_high,
            "text": f"{text} with {100 * gate.confidence:g}% confidence; {measured}"}


def recommend(rows, gate: Gate, target: str = "host") -> Recommendation | None:
    """The recommendation among ``rows`` for ``target``, or None when none passes ``gate``."""
    cands = candidates(rows, target)
    if target == "mcu":
        return _recommend_mcu(cands, gate)
    passing = sorted((r for r in cands if gate.passes(r)), key=lambda r: r.p50)
    if not passing:
        return None
    quickest = passing[0]
    tied = [r for r in passing if not faster(interval(quickest), interval(r))]
    best = tie_break(tied, gate)
    lo, hi = interval(best)
    sure = claim(best, gate)
    why = (f"{'the' if len(tied) == 1 else 'tied for'} fastest of {len(passing)} of "
           f"{len(cands)} exports that pass the gate ({gate.describe()}, decided "
           f"{gate.basis()}): p50 {_ms(best.p50)} ms (interval {_ms(lo)}–{_ms(hi)}) at batch "
           f"{best.batch_size}; it {sure['text']}")
    if len(tied) > 1:
        others = ", ".join(f"{r.format}/{r.runtime} {_ms(r.p50)} ms" for r in tied if r is not best)
        why += (f"; within noise of {others} (p50 intervals overlap): a tie goes to the "
                "higher agreement bound, then the smaller file, then the runtime with fewer "
                "dependencies")
    else:
        runner = passing[1] if len(passing) > 1 else None
        if runner is not None:
            why += (f"; faster than the next, {runner.format}/{runner.runtime} at "
                    f"{_ms(runner.p50)} ms")
    return Recommendation.of(best, why, tied=[r.artifact for r in tied if r is not best],
                             **{k: sure[k] for k in ("confidence", "agreement_low", "drop_high")})


def _mcu_cost(row: BenchRow) -> tuple:
    m = row.micro or MicroFigures()
    flash = flash_bytes(row) or 0
    return (float("inf") if m.macs is None else m.macs, (m.arena_bytes or 0) + flash,
            row.size_bytes or 0)


def _mcu_figures(row: BenchRow) -> str:
    """``1,458,816 MACs, arena 23.3 KB + flash 142 KB`` (what is known of them)."""
    m = row.micro or MicroFigures()
    memory = []
    if m.arena_bytes is not None:
        memory.append(f"arena {fmt_bytes(m.arena_bytes)}{arena_note(m)}")
    flash = flash_bytes(row)
    if flash is not None:
        memory.append(f"flash {fmt_bytes(flash)}")
    parts = ([f"{m.macs:,} MACs"] if m.macs is not None else []) + \
        ([" + ".join(memory)] if memory else [])
    return ", ".join(parts) or "no memory figures"


def _recommend_mcu(cands: list[BenchRow], gate: Gate) -> Recommendation | None:
    """The microcontroller choice: fewest MACs, then smallest arena + flash."""
    passing = sorted((r for r in cands if gate.passes(r)), key=_mcu_cost)
    if not passing:
        return None
    best = passing[0]
    why = (f"the fewest multiply-accumulates of {len(passing)} of {len(cands)} exports that "
           f"pass the gate ({gate.describe()}), then the smallest arena + flash: "
           f"{_mcu_figures(best)}; MACs stand in for microcontroller time (host latency on "
           "TFLM's reference kernels does not rank)")
    sure = claim(best, gate)
    why += f"; it {sure['text']}"
    if len(passing) > 1:
        why += f"; next {passing[1].format}/{passing[1].runtime}: {_mcu_figures(passing[1])}"
    return Recommendation.of(best, why, micro=best.micro, target="mcu",
                             **{k: sure[k] for k in ("confidence", "agreement_low", "drop_high")})


def closest(rows, gate: Gate, target: str = "host") -> str:
    """One line naming the candidate nearest the gate, and its numbers (with budgets:
    the one nearest to fitting, and by how much it misses).

    Example:
        >>> closest([], Gate())
        'no export has parity numbers'
    """
    cands = [r for r in candidates(rows, target) if r.top1_agreement is not None]
    if not cands:
        return "no export has parity numbers"
    key = (lambda r: (r.top1_agreement, r.accuracy_delta or 0.0))
    if gate.has_budgets:
        key = (lambda r, k=key: (not gate.parity_failures(r), -gate.overshoot(r), k(r)))
    best = max(cands, key=key)
    figures = f"p50 {best.p50:.3g} ms" + (f", {_mcu_figures(best)}" if best.micro else "")
    if target == "mcu":
        figures = _mcu_figures(best)
    return (f"closest: {best.format}/{best.runtime} with top-1 agreement "
            f"{100 * best.top1_agreement:.2f}%, accuracy "
            f"{100 * (best.accuracy_delta or 0):+.2f} pt, {figures} "
            f"({'; '.join(gate.failures(best))})")


def recommendation_note(rows, gate: Gate, target: str = "host") -> str:
    """Why there is no recommendation: the gate and the closest candidate.

    Example:
        >>> recommendation_note([], Gate(0.99, None))
        'No export passes the gate (top-1 agreement >= 99%); no export has parity numbers.'
    """
    return f"No export passes the gate ({gate.describe()}); {closest(rows, gate, target)}." + \
        _sizing_hint(rows, gate, target)


def _sizing_hint(rows, gate: Gate, target: str) -> str:
    """When the best candidate is only undecided on agreement: how many images would
    decide it (``bench.bounds.images_needed`` at its measured agreement), or ''."""
    cands = [r for r in candidates(rows, target) if r.top1_agreement is not None
             and gate.verdict(r).answer == "undecided"]
    if not cands or gate.min_agreement is None or gate.mode == "point":
        return ""
    best = max(cands, key=lambda r: r.top1_agreement)
    n = (best.parity_counts or {}).get("n")
    need = images_needed(gate.min_agreement, gate.level, best.top1_agreement)
    if not n or not need or need <= n:
        return ""
    return (f" {n:,} images cannot prove the agreement: at {100 * best.top1_agreement:.2f}% "
            f"that takes at least {need:,} (more test images, or --gate point to decide "
            "on the measured figures).")
