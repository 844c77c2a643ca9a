"""What a benchmark is given: the settings of a measurement and the labelled images.

``BenchSettings`` gathers every knob of how one artifact is run and timed (runtime,
device, threads, runtime options, batch sizes, the measurement, a bare-loop check,
``--preprocess`` overrides), so the functions that measure take one object instead of a
dozen keywords; ``EvalData`` carries the images, their labels and the reference model's
probabilities on them.

Example:
    >>> s = BenchSettings(batch_sizes=(1, 8))
    >>> s.threads.mode, s.measurement.min_runs
    ('auto', 50)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from edgeproof.bench.measure import Measurement
from edgeproof.bench.threads import AUTO, Threads
from edgeproof.errors import UsageError


@dataclass(frozen=True)
class BenchSettings:
    """How to run and time one artifact.

    Args:
        runtime: the runtime's name (None: by the artifact's suffix).
        device, allow_fallback: where to run it, and whether running elsewhere is accepted.
        threads: ``Threads`` (auto: a sweep per artifact picks the count).
        runtime_options: ``{key: value}``; each runtime takes the keys it declares.
        batch_sizes: one result row per batch size (latency is per call of that many).
        measurement: warm-up and timing lengths.
        latency: False for accuracy and parity only (no timing).
        bare_loop: also time a bare loop around the runtime's own call.
        preprocess: ``--preprocess`` overrides of the manifest's preprocessing.
        eval_batch_size: batch size of the accuracy pass.
    """

    runtime: str | None = None
    device: str = "cpu"
    allow_fallback: bool = False
    threads: Threads = AUTO
    runtime_options: dict = field(default_factory=dict)
    batch_sizes: tuple[int, ...] = (1,)
    measurement: Measurement = Measurement()
    latency: bool = True
    bare_loop: bool = False
    preprocess: dict = field(default_factory=dict)
    eval_batch_size: int = 32

    def __post_init__(self):
        object.__setattr__(self, "threads", Threads.parse(self.threads))
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UsageError(f"Batch sizes must be >= 1; got {list(self.batch_sizes)}.")

    def replace(self, **changes) -> "BenchSettings":
        """A copy with ``changes``.

        Example:
            >>> BenchSettings().replace(latency=False).latency
            False
        """
        return dataclasses.replace(self, **changes)

    def record(self) -> dict:
        """The settings as report.json's ``measurement`` section."""
        return {**self.measurement.to_dict(), "threads": str(self.threads),
                "runtime_options": dict(self.runtime_options),
                "batch_sizes": list(self.batch_sizes)}


@dataclass(frozen=True)
class EvalData:
    """Labelled images for accuracy and parity.

    Args:
        images: uint8 NHWC images.
        labels: their integer labels (None: no accuracy).
        reference: the reference model's probabilities on ``images`` (None: no parity).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    reference: np.ndarray | None = None

    def subset(self, idx) -> "EvalData":
        """The images at ``idx`` with their labels and reference probabilities.

        Example:
            >>> EvalData(np.zeros((4, 2, 2, 1), np.uint8), np.arange(4)).subset([1, 3]).labels
            array([1, 3])
        """
        pick = (lambda a: None if a is None else a[idx])
        return EvalData(self.images[idx], pick(self.labels), pick(self.reference))

    def sample(self, n: int, seed: int = 0) -> "EvalData":
        """A seeded sample of ``n`` images, in their stored order (all of them when there
        are no more than ``n``). Splits are stored class by class, so a prefix would hold
        one or two classes; the same seed gives the same sample on every run.

        Example:
            >>> len(EvalData(np.zeros((5, 2, 2, 1), np.uint8), np.arange(5)).sample(3).labels)
            3
        """
        if len(self.images) <= n:
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self.images), n,
                                                                      replace=False)))
