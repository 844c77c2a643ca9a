"""Confidence bounds on agreement and on the accuracy drop: how sure a parity figure is.

An agreement of 99.10% on 1,000 images says little about the next 1,000: the standard
error near 99% is about 0.3 points. The gate (``bench.gate``) therefore decides on
bounds, computed here from the image counts of one comparison (``PairedCounts``):

- **Agreement**: the one-sided **Clopper–Pearson** (exact binomial) bound at the
  confidence asked for, from ``scipy.stats.binomtest(...).proportion_ci`` with
  ``alternative="greater"`` (lower bound) or ``"less"`` (upper bound). It never covers
  less than promised; with no disagreement at all, n images prove at most
  ``(1 - confidence) ** (1 / n)``: 299 images for 99% at 95% (``images_needed``).
- **Accuracy drop** (reference accuracy minus the export's, on the *same* images, so
  paired): **Newcombe's square-and-add interval for paired proportions** (Newcombe 1998,
  *Statistics in Medicine* 17:2635, method 10; as Fagerland, Lydersen & Laake,
  *Statistical Analysis of Contingency Tables* (2017), ch. 8, give it), built on the two
  accuracies' Wilson intervals from
  ``statsmodels.stats.proportion.proportion_confint(method="wilson")`` and their
  correlation over the paired table. Each end is a one-sided bound at ``confidence``
  (the two-sided interval at ``2 * confidence - 1``).

Many candidates compared at once need a correction (``bonferroni``): a choice among m
candidates judges each at ``1 - (1 - confidence) / m``, so the chance that any candidate
that truly misses the target clears its bound, and with it the chance that the pick
fails on new data, is at most ``1 - confidence``.

Example:
    >>> round(agreement_bounds(299, 299, 0.95)[0], 5)
    0.99003
    >>> images_needed(0.99, 0.95)
    299
    >>> c = PairedCounts(n=1000, agree=995, both_right=900, lost=3, gained=1)
    >>> low, high = drop_bounds(c, 0.95)
    >>> low < c.drop < high
    True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

AGREEMENT_METHOD = "one-sided Clopper-Pearson (exact binomial, scipy.stats.binomtest)"
DROP_METHOD = ("Newcombe's paired square-and-add interval on Wilson bounds (Newcombe 1998, "
               "method 10; statsmodels proportion_confint)")
CORRECTION = "bonferroni"
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedCounts:
    """What one comparison of an export with its reference counted, image by image.

    Args:
        n: images compared.
        agree: images where both give the same top-1 class.
        both_right, lost, gained: with labels, images both classify right, only the
            reference does (``lost``), only the export does (``gained``); None without.
    """

    n: int
    agree: int
    both_right: int | None = None
    lost: int | None = None
    gained: int | None = None

    @classmethod
    def from_predictions(cls, ref_top, cand_top, labels=None) -> "PairedCounts":
        """The counts of two top-1 answer vectors (and the true labels, when known).

        Example:
            >>> PairedCounts.from_predictions([0, 1, 1, 2], [0, 1, 2, 2], [0, 1, 1, 1])
            PairedCounts(n=4, agree=3, both_right=2, lost=1, gained=0)
        """
        ref_top, cand_top = np.asarray(ref_top), np.asarray(cand_top)
        agree = int((ref_top == cand_top).sum())
        if labels is None:
            return cls(len(ref_top), agree)
        y = np.asarray(labels)
        r, c = ref_top == y, cand_top == y
        return cls(len(y), agree, int((r & c).sum()), int((r & ~c).sum()), int((~r & c).sum()))

    @classmethod
    def from_dict(cls, d: dict | None) -> "PairedCounts | None":
        """Counts from a JSON row (None stays None)."""
        return None if not d else cls(**{k: d.get(k) for k in ("n", "agree", "both_right",
                                                               "lost", "gained")})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def paired(self) -> bool:
        """Whether the accuracy drop can be bounded (labels were known)."""
        return self.lost is not None and self.n > 0

    @property
    def drop(self) -> float | None:
        """Reference accuracy minus the export's (a fraction; negative: the export gains)."""
        return (self.lost - self.gained) / self.n if self.paired else None


def _check(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return confidence


def agreement_bounds(agree: int, n: int, confidence: float = DEFAULT_CONFIDENCE):
    """(lower, upper) one-sided Clopper–Pearson bounds of the agreement rate, each at
    ``confidence``.

    Example:
        >>> [round(b, 4) for b in agreement_bounds(990, 1000, 0.95)]
        [0.9831, 0.9946]
    """
    from scipy.stats import binomtest

    _check(confidence)
    if n < 1:
        return 0.0, 1.0
    low = binomtest(agree, n, alternative="greater").proportion_ci(confidence, "exact").low
    high = binomtest(agree, n, alternative="less").proportion_ci(confidence, "exact").high
    return float(low), float(high)


def _wilson(count: int, n: int, alpha: float) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(count, n, alpha=alpha, method="wilson")
    return float(lo), float(hi)


def _psi(n11: int, n12: int, n21: int, n22: int) -> float:
    """Newcombe's estimate of the correlation of the two paired proportions, shrunk
    toward 0 by the continuity term ``n / 2`` (as Fagerland et al. give method 10)."""
    n = n11 + n12 + n21 + n22
    margins = (n11 + n12, n21 + n22, n11 + n21, n12 + n22)
    if 0 in margins:
        return 0.0
    a = n11 * n22 - n12 * n21
    root = math.sqrt(math.prod(float(m) for m in margins))
    return (a - n / 2) / root if a > n / 2 else (0.0 if a >= 0 else a / root)


def drop_bounds(counts: PairedCounts, confidence: float = DEFAULT_CONFIDENCE):
    """(lower, upper) bounds of the accuracy drop (reference minus export), each end
    one-sided at ``confidence`` (Newcombe's paired square-and-add interval).

    Example (Fagerland et al.'s Bentur 2009 table, 95% two-sided = 97.5% one-sided):
        >>> c = PairedCounts(n=21, agree=0, both_right=1, lost=1, gained=7)
        >>> [round(b, 3) for b in drop_bounds(c, 0.975)]
        [-0.507, -0.026]
    """
    _check(confidence)
    if not counts.paired:
        raise ValueError("the accuracy drop needs labelled counts (lost, gained)")
    n11, n12, n21 = counts.both_right, counts.lost, counts.gained
    n = counts.n
    n22 = n - n11 - n12 - n21
    alpha = 2 * (1 - confidence)  # a two-sided interval whose ends are one-sided bounds
    p1, p2 = (n11 + n12) / n, (n11 + n21) / n
    l1, u1 = _wilson(n11 + n12, n, alpha)
    l2, u2 = _wilson(n11 + n21, n, alpha)
    psi, d = _psi(n11, n12, n21, n22), p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2)
                            + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1)
                             + (u1 - p1) ** 2))
    return max(-1.0, low), min(1.0, high)


def corrected(confidence: float, compared: int = 1) -> float:
    """The confidence each of ``compared`` candidates is judged at (Bonferroni).

    Example:
        >>> corrected(0.95, 1), round(corrected(0.95, 20), 6)
        (0.95, 0.9975)
    """
    _check(confidence)
    return 1 - (1 - confidence) / max(1, int(compared))


def images_needed(min_agreement: float, confidence: float = DEFAULT_CONFIDENCE,
                  agreement: float = 1.0, limit: int = 10_000_000) -> int | None:
    """The fewest images on which an export agreeing on ``agreement`` of them (1.0: not
    one disagreement) proves ``min_agreement`` at ``confidence``; None when no count up to
    ``limit`` does (``agreement`` at or below the target).

    Example:
        >>> images_needed(0.99, 0.95), images_needed(0.99, 0.95, agreement=0.995)
        (299, 1441)
        >>> images_needed(0.99, 0.95, agreement=0.99) is None
        True
    """
    if min_agreement <= 0:
        return 1
    if agreement <= min_agreement:
        return None

    def proves(n: int) -> bool:
        return agreement_bounds(math.floor(agreement * n + 1e-9), n, confidence)[0] \
            >= min_agreement

    hi = 1
    while not proves(hi):  # doubling, then bisection: the bound grows with n
        if hi > limit:
            return None
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if proves(mid) else (mid, hi)
    # floor(agreement * n) steps unevenly, so the bound is not quite monotone in n: step
    # down to the first count of this run that proves it
    while hi > 1 and proves(hi - 1):
        hi -= 1
    return hi


def disagreements_allowed(n: int, min_agreement: float,
                          confidence: float = DEFAULT_CONFIDENCE) -> int | None:
    """The most disagreements among ``n`` images that still prove ``min_agreement`` at
    ``confidence``; None when not even zero does.

    Example:
        >>> disagreements_allowed(5000, 0.99, 0.95), disagreements_allowed(298, 0.99, 0.95)
        (38, None)
    """
    def proves(d: int) -> bool:
        return agreement_bounds(n - d, n, confidence)[0] >= min_agreement

    if n < 1 or not proves(0):
        return None
    if proves(n):
        return n
    lo, hi = 0, n  # proves(lo) holds; the bound falls as disagreements grow
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if proves(mid) else (lo, mid)
    return lo


def provable(n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The highest agreement ``n`` images can prove (every image agreeing).

    Example:
        >>> round(provable(360, 0.95), 4)
        0.9917
    """
    return agreement_bounds(n, n, confidence)[0] if n > 0 else 0.0
