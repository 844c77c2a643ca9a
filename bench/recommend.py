"""Which export to ship: the fastest one that passes the gate.

A candidate passes when the ``Gate`` finds nothing wrong with it (top-1 agreement with
the reference and accuracy drop, each when the gate checks it). Among those, the one
with the lowest p50 at the smallest batch size measured is the fastest; every other
whose p50 interval overlaps its interval (``bench.stats``) is tied with it, "within
noise", and the tie goes to the smaller file, then to the runtime with fewer
dependencies. The reference's own formats (``keras``, ``saved_model``) are not edge
exports and never recommended. When nothing passes, the closest candidate (highest
agreement, then accuracy) is named with its numbers and the rules it breaks.

Example:
    >>> rows = [BenchRow(format="tflite-int8", runtime="litert", status="ok", batch_size=1,
    ...                  top1_agreement=0.995, accuracy_delta=-0.001, size_bytes=10,
    ...                  latency_ms={"p50": 0.5}, accuracy=0.9, artifact="m.tflite")]
    >>> recommend(rows, Gate())["format"]
    'tflite-int8'
"""

from __future__ import annotations

from edgeproof.bench.gate import Gate
from edgeproof.bench.row import BenchRow, as_rows
from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.bench.stats import faster

REFERENCE_FORMATS = ("keras", "saved_model")


def candidates(rows) -> list[BenchRow]:
    """The rows a recommendation may pick from: measured edge exports at the smallest
    batch size measured."""
    ok = [r for r in as_rows(rows) if r.ok and r.latency_ms
          and r.format not in REFERENCE_FORMATS]
    if not ok:
        return []
    smallest = min(r.batch_size for r in ok)
    return [r for r in ok if r.batch_size == smallest]


def interval(row: BenchRow) -> tuple[float, float]:
    """The p50 interval a comparison uses: the 95% interval within the process, widened to
    the spread of the per-process p50s when ``--repeat`` ran it several times."""
    lat = row.latency_ms or {}
    lo, hi = (lat.get("p50_ci") or [row.p50, row.p50])[:2]
    between = (lat.get("repeats") or {}).get("p50_ms") or []
    return (min([lo, *between]), max([hi, *between]))


def _footprint(row: BenchRow) -> int:
    cls = RUNTIMES.rows_by_name().get(row.runtime)
    return cls.footprint if cls is not None else 99


def _ms(x: float) -> str:
    return f"{x:.3g}"


def recommend(rows, gate: Gate) -> dict | None:
    """The recommendation among ``rows``, or None when none passes ``gate``.

    Returns ``{artifact, format, runtime, threads, accuracy, accuracy_delta,
    top1_agreement, latency_ms, size_bytes, why}``.
    """
    cands = candidates(rows)
    passing = sorted((r for r in cands if gate.passes(r)), key=lambda r: r.p50)
    if not passing:
        return None
    quickest = passing[0]
    tied = [r for r in passing if not faster(interval(quickest), interval(r))]
    best = min(tied, key=lambda r: (r.size_bytes or 0, _footprint(r), r.p50))
    lo, hi = interval(best)
    why = (f"{'the' if len(tied) == 1 else 'tied for'} fastest of {len(passing)} of "
           f"{len(cands)} exports that pass the gate "
           f"({gate.describe()}): p50 {_ms(best.p50)} ms [95% CI {_ms(lo)}–{_ms(hi)}] at batch "
           f"{best.batch_size}")
    if len(tied) > 1:
        others = ", ".join(f"{r.format}/{r.runtime} {_ms(r.p50)} ms" for r in tied if r is not best)
        why += (f"; within noise of {others} (p50 intervals overlap): a tie goes to the "
                "smaller file, then to the runtime with fewer dependencies")
    else:
        runner = passing[1] if len(passing) > 1 else None
        if runner is not None:
            why += f", faster than the next, {runner.format}/{runner.runtime} at {_ms(runner.p50)} ms"
    return {"artifact": best.artifact, "format": best.format, "runtime": best.runtime,
            "threads": best.threads, "accuracy": best.accuracy,
            "accuracy_delta": best.accuracy_delta, "top1_agreement": best.top1_agreement,
            "latency_ms": best.latency_ms, "size_bytes": best.size_bytes,
            "tied": [r.artifact for r in tied if r is not best], "why": why}


def closest(rows, gate: Gate) -> str:
    """One line naming the candidate nearest the gate, and its numbers.

    Example:
        >>> closest([], Gate())
        'no export has parity numbers'
    """
    cands = [r for r in candidates(rows) if r.top1_agreement is not None]
    if not cands:
        return "no export has parity numbers"
    best = max(cands, key=lambda r: (r.top1_agreement, r.accuracy_delta or 0.0))
    return (f"closest: {best.format}/{best.runtime} with top-1 agreement "
            f"{100 * best.top1_agreement:.2f}%, accuracy "
            f"{100 * (best.accuracy_delta or 0):+.2f} pt, p50 {best.p50:.3g} ms "
            f"({'; '.join(gate.failures(best))})")


def recommendation_note(rows, gate: Gate) -> str:
    """Why there is no recommendation: the gate and the closest candidate.

    Example:
        >>> recommendation_note([], Gate(0.99, None))
        'No export passes the gate (top-1 agreement >= 99%); no export has parity numbers.'
    """
    return f"No export passes the gate ({gate.describe()}); {closest(rows, gate)}."
