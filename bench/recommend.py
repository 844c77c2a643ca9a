"""Which export to ship: the fastest one that passes the gate.

A candidate passes when its top-1 agreement with the reference is at least
``min_agreement`` and its accuracy is at most ``max_accuracy_drop`` below the
reference's. Among those the lowest batch-1 p50 wins; equal p50s (to three significant
digits) go to the smaller file. The reference's own format (``keras``, ``saved_model``)
is not an edge export and never recommended. When nothing passes, the closest candidate
(highest agreement, then accuracy) is named with its numbers.

Example:
    >>> rows = [{"format": "tflite-int8", "runtime": "litert", "status": "ok", "batch_size": 1,
    ...          "top1_agreement": 0.995, "accuracy_delta": -0.001, "size_bytes": 10,
    ...          "latency_ms": {"p50": 0.5}, "accuracy": 0.9, "artifact": "m.tflite"}]
    >>> recommend(rows)["format"]
    'tflite-int8'
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MAX_ACCURACY_DROP = 0.005  # a fraction: half a percentage point
REFERENCE_FORMATS = ("keras", "saved_model")


@dataclass(frozen=True)
class Gate:
    """The bar an export must clear (fractions, not points)."""

    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP

    def failures(self, row: dict) -> list[str]:
        """Why ``row`` fails (empty: it passes)."""
        out = []
        if row.get("top1_agreement") is None:
            return ["no parity numbers (no reference)"]
        if row["top1_agreement"] < self.min_agreement:
            out.append(f"top-1 agreement {100 * row['top1_agreement']:.2f}% < "
                       f"{100 * self.min_agreement:.2f}%")
        if -(row.get("accuracy_delta") or 0.0) > self.max_accuracy_drop:
            out.append(f"accuracy {100 * row['accuracy_delta']:+.2f} pt, more than "
                       f"{100 * self.max_accuracy_drop:.2f} pt down")
        return out

    def describe(self) -> str:
        return (f"top-1 agreement >= {100 * self.min_agreement:g}%, accuracy drop <= "
                f"{100 * self.max_accuracy_drop:g} pt")


def _candidates(rows: list[dict]) -> list[dict]:
    ok = [r for r in rows if r.get("status") == "ok" and r.get("latency_ms")
          and r.get("format") not in REFERENCE_FORMATS]
    if not ok:
        return []
    smallest = min(r["batch_size"] for r in ok)
    return [r for r in ok if r["batch_size"] == smallest]


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


def recommend(rows: list[dict], gate: Gate | None = None) -> dict | None:
    """The recommendation among ``rows`` (report rows), or None when none passes.

    Returns ``{artifact, format, runtime, threads, accuracy, accuracy_delta,
    top1_agreement, latency_ms, size_bytes, why}``.
    """
    gate = gate or Gate()
    cands = _candidates(rows)
    passing = [r for r in cands if not gate.failures(r)]
    if not passing:
        return None
    passing.sort(key=lambda r: (_sig(r["latency_ms"]["p50"]), r.get("size_bytes") or 0))
    best = passing[0]
    runner = passing[1] if len(passing) > 1 else None
    why = (f"the fastest of {len(passing)} of {len(cands)} exports that pass the gate "
           f"({gate.describe()}): p50 {best['latency_ms']['p50']:.3g} ms at batch "
           f"{best['batch_size']}")
    if runner is not None:
        why += (f", next {runner['format']}/{runner['runtime']} at "
                f"{runner['latency_ms']['p50']:.3g} ms")
    return {"artifact": best.get("artifact"), "format": best["format"],
            "runtime": best["runtime"], "threads": best.get("threads"),
            "accuracy": best.get("accuracy"), "accuracy_delta": best.get("accuracy_delta"),
            "top1_agreement": best.get("top1_agreement"), "latency_ms": best["latency_ms"],
            "size_bytes": best.get("size_bytes"), "why": why}


def closest(rows: list[dict], gate: Gate | None = None) -> str:
    """One line naming the candidate nearest the gate, and its numbers.

    Example:
        >>> closest([])
        'no export has parity numbers'
    """
    gate = gate or Gate()
    cands = [r for r in _candidates(rows) if r.get("top1_agreement") is not None]
    if not cands:
        return "no export has parity numbers"
    best = max(cands, key=lambda r: (r["top1_agreement"], r.get("accuracy_delta") or 0.0))
    return (f"closest: {best['format']}/{best['runtime']} with top-1 agreement "
            f"{100 * best['top1_agreement']:.2f}%, accuracy "
            f"{100 * (best.get('accuracy_delta') or 0):+.2f} pt, p50 "
            f"{best['latency_ms']['p50']:.3g} ms ({'; '.join(gate.failures(best))})")
