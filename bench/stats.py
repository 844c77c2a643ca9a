"""Confidence intervals for latency percentiles, and what may be called faster.

A p50 printed to four digits says nothing about how far it would move on the next run.
Every percentile edgeproof reports carries a 95% confidence interval from the
**distribution-free order-statistic method** (Hahn & Meeker, *Statistical Intervals*,
sec. 5.2; the interval MLPerf's single-stream rules use for a percentile): the number
``B`` of samples below the true q-quantile is Binomial(n, q), so the interval
``[x_(l), x_(u)]`` between two order statistics covers the quantile with probability
``P(l <= B < u)``, computed exactly from the binomial distribution. It assumes
independent samples; consecutive inference times are mildly correlated (caches,
frequency), which is one reason ``--repeat`` also reports the spread between processes.

Two latencies are only called different when their intervals do not overlap
(``faster``); otherwise they are tied, "within noise".

Example:
    >>> x = list(range(1, 101))
    >>> quantile_ci(x, 0.5)
    (40, 61)
    >>> faster((1.0, 1.2), (1.1, 1.4)), faster((1.0, 1.2), (1.3, 1.4))
    (False, True)
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95
METHOD = ("distribution-free order-statistic interval (exact binomial), 95%, over the timed "
          "calls of one process")


def _binomial_cdf(n: int, q: float) -> np.ndarray:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, q), in log space (exact for any n)."""
    k = np.arange(n + 1)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((n - k[1:] + 1) / k[1:]))])
    log_pmf = log_choose + k * math.log(q) + (n - k) * math.log1p(-q)
    pmf = np.exp(log_pmf - log_pmf.max())
    return np.cumsum(pmf) / pmf.sum()


def quantile_ranks(n: int, q: float, level: float = LEVEL) -> tuple[int, int, float]:
    """1-based ranks ``(l, u)`` of the order statistics bounding the q-quantile of ``n``
    samples with at least ``level`` coverage, and the exact coverage.

    Too few samples for ``level`` give ``(1, n)`` and the (lower) coverage it has.

    Example:
        >>> quantile_ranks(100, 0.5)[:2]
        (40, 61)
        >>> quantile_ranks(3, 0.5)
        (1, 3, 0.75)
    """
    if n < 1 or not 0 < q < 1:
        raise ValueError(f"need n >= 1 and 0 < q < 1, got n={n}, q={q}")
    cdf = _binomial_cdf(n, q)
    alpha = 1 - level
    below = np.concatenate([[0.0], cdf])  # below[j] = P(B <= j - 1) = P(B < j)
    lows = np.flatnonzero(below[1:n + 1] <= alpha / 2 + 1e-12)  # candidates j - 1 for l = j
    l = int(lows[-1]) + 1 if len(lows) else 1
    highs = np.flatnonzero(cdf[:n] >= 1 - alpha / 2 - 1e-12)  # P(B <= u - 1) >= 1 - a/2
    u = int(highs[0]) + 1 if len(highs) else n
    coverage = float(below[u] - below[l])  # P(l <= B <= u - 1)
    return l, u, round(coverage, 4)


def quantile_ci(samples, q: float, level: float = LEVEL):
    """The ``level`` confidence interval ``(low, high)`` of the q-quantile of ``samples``.

    Example:
        >>> quantile_ci([5.0, 1.0, 3.0, 2.0, 4.0] * 10, 0.5)
        (2.0, 4.0)
    """
    x = np.sort(np.asarray(samples))
    l, u, _ = quantile_ranks(len(x), q, level)
    lo, hi = x[l - 1], x[u - 1]
    return (lo.item(), hi.item())


def faster(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """True when interval ``a`` lies wholly below interval ``b`` (no overlap).

    Example:
        >>> faster((0.10, 0.12), (0.12, 0.14))
        False
    """
    return bool(a and b and a[1] < b[0])


def spread(values) -> dict:
    """The spread of per-process p50s (``--repeat``): each value, and (max - min) / median.

    Example:
        >>> spread([1.0, 1.1, 0.9])
        {'p50_ms': [1.0, 1.1, 0.9], 'range_pct': 20.0}
    """
    v = [float(x) for x in values]
    med = float(np.median(v)) if v else 0.0
    return {"p50_ms": [round(x, 4) for x in v],
            "range_pct": round(100 * (max(v) - min(v)) / med, 1) if med else None}
