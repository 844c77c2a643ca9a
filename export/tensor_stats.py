"""How far one integer tensor is from the float model's: SQNR, cosine, and the facts a
cause is read from (the int8 range's clipped and saturated shares, how many of its
levels the bulk of the values use, outlier values and outlier channels).

``TensorAccumulator`` takes (float, integer) batches of one tensor and keeps running
sums, not the tensors: a triage over a hundred images of a large model stays small. A
seeded subsample of the float values is kept for the percentiles and the histogram.

Example:
    >>> acc = TensorAccumulator("t", scale=0.1, zero_point=0, qmin=-128, qmax=127, axis=-1)
    >>> f = np.linspace(-1, 1, 200, dtype=np.float32).reshape(2, 100)
    >>> acc.add(f, np.round(f / 0.1).astype(np.int8))
    >>> s = acc.stats()
    >>> s.sqnr_db > 20, s.cosine > 0.99, s.clipped_share
    (True, True, 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SAMPLE_PER_BATCH = 2048  # float values kept per batch for percentiles and the histogram
BULK = 99.9              # the central share (%) of values whose spread ``levels_used`` measures


@dataclass
class WeightFacts:
    """The weights of the layer that produced a tensor, as the artifact stores them.

    Attributes:
        tensor: the weight's name in the artifact.
        scales: how many quantization scales it has (1: per-tensor, else per channel).
        channel_ratio: the largest output channel's range over the median one's.
    """

    tensor: str
    scales: int
    channel_ratio: float

    @property
    def per_tensor(self) -> bool:
        return self.scales == 1


@dataclass
class TensorStats:
    """One matched tensor: the float model's against the integer artifact's.

    Attributes:
        name: the tensor's name in the artifact.
        producer: the op (node) that produced it; ``producer_type`` its type.
        index: its place in execution order.
        sqnr_db: signal-to-quantization-noise ratio, 10·log10(Σf² / Σ(f-q)²).
        cosine: cosine similarity of the float and dequantized values.
        scale, zero_point, qmin, qmax: the artifact's quantization of it.
        clipped_share: share of the float values outside the integer range.
        saturated_share: share of the integer values at a bound that is not zero.
        levels_used: share of the integer range the central 99.9% of float values span.
        outlier_ratio: max |x| over the 99.9th percentile of |x|.
        channel_ratio: the largest channel's max |x| over the median channel's.
        median_channel_levels: share of the integer range the median channel's max |x|
            spans (tiny when one channel sets the scale for all).
        inputs: the matched tensors its producer read (after pass-through ops).
        weight: the producing layer's weights, when it has any.
        affine_channels: the producer multiplies or adds a constant vector of this many
            values (per channel: what an unfolded BatchNorm becomes), else 0.
    """

    name: str
    producer: str = ""
    producer_type: str = ""
    index: int = 0
    sqnr_db: float = float("nan")
    cosine: float = float("nan")
    scale: float = 0.0
    zero_point: int = 0
    qmin: int = -128
    qmax: int = 127
    clipped_share: float = 0.0
    saturated_share: float = 0.0
    levels_used: float = float("nan")
    outlier_ratio: float = float("nan")
    channel_ratio: float = float("nan")
    median_channel_levels: float = float("nan")
    inputs: list[str] = field(default_factory=list)
    weight: WeightFacts | None = None
    affine_channels: int = 0
    sample: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The JSON record (no sample), numbers rounded.

        Example:
            >>> TensorStats("t", sqnr_db=31.234567).to_dict()["sqnr_db"]
            31.2346
        """
        d = asdict(self)
        d.pop("sample")
        return {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else
                    None if isinstance(v, float) else v) for k, v in d.items()}


def sqnr_db(signal: float, noise: float) -> float:
    """10·log10(signal / noise) in dB, capped at 120 (an exact tensor).

    Example:
        >>> sqnr_db(100.0, 1.0), sqnr_db(1.0, 0.0)
        (20.0, 120.0)
    """
    if noise <= 0:
        return 120.0 if signal > 0 else float("nan")
    return float(min(120.0, 10 * np.log10(max(signal, 1e-30) / noise)))


class TensorAccumulator:
    """Running comparison of one tensor over batches (see the module docstring).

    Args:
        name: the tensor's name in the artifact.
        scale, zero_point, qmin, qmax: its quantization.
        axis: its channel axis (-1: NHWC, 1: NCHW).
    """

    def __init__(self, name: str, scale: float, zero_point: int, qmin: int, qmax: int,
                 axis: int = -1, seed: int = 0):
        self.name, self.scale, self.zp, self.qmin, self.qmax = name, scale, zero_point, qmin, qmax
        self.axis = axis
        self.rng = np.random.default_rng(seed)
        self.ff = self.ee = self.fq = self.qq = 0.0
        self.n = self.clipped = self.saturated = 0
        self.channel_max: np.ndarray | None = None
        self.samples: list[np.ndarray] = []

    def add(self, f: np.ndarray, q: np.ndarray) -> None:
        """One batch: the float model's values ``f`` and the artifact's integers ``q``."""
        f = np.asarray(f, np.float64)
        d = (np.asarray(q, np.float64) - self.zp) * self.scale
        if d.shape != f.shape:
            raise ValueError(f"{self.name}: shapes {f.shape} and {d.shape} differ")
        self.ff += float((f * f).sum())
        self.ee += float(((f - d) ** 2).sum())
        self.fq += float((f * d).sum())
        self.qq += float((d * d).sum())
        self.n += f.size
        lo, hi = (self.qmin - self.zp) * self.scale, (self.qmax - self.zp) * self.scale
        half = self.scale / 2
        self.clipped += int(((f < lo - half) | (f > hi + half)).sum())
        # A bound whose real value is zero is where ReLU outputs sit, not saturation.
        qi = np.asarray(q)
        self.saturated += int(((qi == self.qmin) & (lo < -half)).sum() +
                              ((qi == self.qmax) & (hi > half)).sum())
        if f.ndim >= 2:
            axis = self.axis % f.ndim
            per = np.abs(f).max(axis=tuple(a for a in range(f.ndim) if a != axis))
            self.channel_max = per if self.channel_max is None else \
                np.maximum(self.channel_max, per)
        flat = f.reshape(-1)
        keep = flat if flat.size <= SAMPLE_PER_BATCH else \
            flat[self.rng.choice(flat.size, SAMPLE_PER_BATCH, replace=False)]
        self.samples.append(keep.astype(np.float32))

    def stats(self) -> TensorStats:
        """The comparison so far as a ``TensorStats`` (graph facts left empty)."""
        sample = np.concatenate(self.samples) if self.samples else np.zeros(0, np.float32)
        cos = self.fq / np.sqrt(self.ff * self.qq) if self.ff > 0 and self.qq > 0 else \
            (1.0 if self.ff == self.qq == 0 else 0.0)
        span = (self.qmax - self.qmin) * self.scale
        levels = outlier = channel = median_levels = float("nan")
        if sample.size and span > 0:
            lo, hi = np.percentile(sample, [(100 - BULK) / 2, (100 + BULK) / 2])
            levels = float(min(1.0, (hi - lo) / span))
            a = np.abs(sample)
            p = float(np.percentile(a, BULK))
            outlier = float(a.max() / p) if p > 0 else float("nan")
        if self.channel_max is not None and self.channel_max.size > 1:
            med = float(np.median(self.channel_max))
            channel = float(self.channel_max.max() / med) if med > 0 else float("nan")
            median_levels = float(min(1.0, med / span)) if span > 0 else float("nan")
        n = max(self.n, 1)
        return TensorStats(self.name, sqnr_db=sqnr_db(self.ff, self.ee), cosine=float(cos),
                           scale=float(self.scale), zero_point=int(self.zp), qmin=self.qmin,
                           qmax=self.qmax, clipped_share=self.clipped / n,
                           saturated_share=self.saturated / n, levels_used=levels,
                           outlier_ratio=outlier, channel_ratio=channel,
                           median_channel_levels=median_levels, sample=sample)


def weight_facts(name: str, values: np.ndarray, scales, axis: int) -> WeightFacts:
    """``WeightFacts`` of a weight tensor (its dequantized values and its scales).

    Args:
        values: the weights as real numbers (dequantized).
        scales: the artifact's scale(s) of it.
        axis: its output-channel axis.

    Example:
        >>> w = np.ones((4, 3)); w[0] *= 50
        >>> f = weight_facts("w", w, [0.1], 0)
        >>> f.per_tensor, f.channel_ratio
        (True, 50.0)
    """
    values = np.asarray(values, np.float64)
    axis = axis % values.ndim
    ranges = np.abs(values).max(axis=tuple(a for a in range(values.ndim) if a != axis))
    med = float(np.median(ranges)) if ranges.size else 0.0
    ratio = float(ranges.max() / med) if med > 0 else float("nan")
    return WeightFacts(name, int(np.size(scales)), ratio)
