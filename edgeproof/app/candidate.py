"""One candidate of ``edgeproof optimize``: a rung exported, checked and timed, as a record.

The ladder (``app.ladder``) makes a ``Candidate`` per rung, tried or not; selection
(``app.optimize.select``) reads its validation numbers as a ``BenchRow``
(``validation_row``); the test-split pass fills ``test``. ``to_dict`` is the one place a
candidate becomes optimize.json's row (the keys README and OPTIMIZE.md document), and the
results table (``bench.table``) renders those rows.

Example:
    >>> c = Candidate("onnx-int8 static, minmax", "onnx-int", "onnx-int8")
    >>> c.say("not tried: the time budget ran out")
    >>> c.to_dict()["reason"], c.passed
    ('not tried: the time budget ran out', False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeproof.bench.micro_figures import MicroFigures, as_micro
from edgeproof.bench.row import BenchRow
from edgeproof.bench.verdict import Verdict

_MEASURED = ("partitions", "artifact", "runtime", "size_bytes", "latency_ms", "throughput_ips",
             "threads", "threads_default", "status", "batch_size", "providers")
# What ran, as a bench row says it (the page's "What ran" table reads them)
_WHAT_RAN = ("device", "ran_on", "requested_device", "fallback", "load_ms", "runtime_details")


@dataclass
class SplitNumbers:
    """A candidate's parity numbers on one split (fractions): accuracy, its delta
    against the reference and top-1 agreement with it, the image counts behind them
    (``bench.bounds.PairedCounts`` as a dict) and the gate's verdict on them."""

    accuracy: float | None = None
    accuracy_delta: float | None = None
    top1_agreement: float | None = None
    parity_counts: dict | None = None
    verdict: Verdict | None = None

    @classmethod
    def from_row(cls, row: BenchRow) -> "SplitNumbers":
        return cls(row.accuracy, row.accuracy_delta, row.top1_agreement, row.parity_counts)

    @classmethod
    def from_dict(cls, d: dict | None) -> "SplitNumbers | None":
        if d is None:
            return None
        v = d.get("verdict")
        return cls(d.get("accuracy"), d.get("accuracy_delta"), d.get("top1_agreement"),
                   d.get("parity_counts"), Verdict.from_dict(v) if v else None)

    def to_dict(self) -> dict:
        """The split's JSON: the three figures, then counts and verdict when known."""
        d = {"accuracy": self.accuracy, "accuracy_delta": self.accuracy_delta,
             "top1_agreement": self.top1_agreement}
        if self.parity_counts is not None:
            d["parity_counts"] = self.parity_counts
        if self.verdict is not None:
            d["verdict"] = self.verdict.to_dict()
        return d


@dataclass
class Candidate:
    """One rung's result. ``status``: ok | failed | not tried | skipped (the reference's
    kind or this machine cannot make it, known before the search); ``passed``: the gate
    passed it on validation; ``reason``: what happened, in words; ``kept_float``: the
    layers or nodes it keeps float (JSON ``float``); ``validation`` / ``test``: its
    numbers on each split (``test`` after selection)."""

    rung: str
    family: str
    format: str
    options: dict = field(default_factory=dict)
    passed: bool = False
    status: str = "failed"
    reason: str = ""
    seconds: float = 0.0
    kept_float: list[str] | None = None
    micro: MicroFigures | None = None
    artifact: str | None = None
    runtime: str | None = None
    size_bytes: int | None = None
    latency_ms: dict | None = None
    throughput_ips: float | None = None
    threads: int | None = None
    threads_default: bool | None = None
    batch_size: int | None = None
    providers: list = field(default_factory=list)
    partitions: int | None = None
    device: str | None = None
    ran_on: str | None = None
    requested_device: str | None = None
    fallback: bool = False
    load_ms: float | None = None
    runtime_details: dict | None = None
    validation: SplitNumbers | None = None
    test: SplitNumbers | None = None

    @classmethod
    def of(cls, rung) -> "Candidate":
        """A fresh candidate for ``rung`` (an ``app.ladder.Rung``)."""
        return cls(rung.label, rung.family, rung.format, dict(rung.options))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50(self) -> float | None:
        return (self.latency_ms or {}).get("p50")

    # The table's accuracy columns are the test split's (validation has its own column).
    @property
    def accuracy(self) -> float | None:
        return self.test.accuracy if self.test else None

    @property
    def accuracy_delta(self) -> float | None:
        return self.test.accuracy_delta if self.test else None

    @property
    def top1_agreement(self) -> float | None:
        return self.test.top1_agreement if self.test else None

    def say(self, text: str) -> None:
        """Add ``text`` to the candidate's reason."""
        self.reason = f"{self.reason}; {text}" if self.reason else text

    def measured(self, row: BenchRow) -> None:
        """Take a validation row's measurement (what ran, how fast, its numbers)."""
        self.partitions = (row.runtime_details or {}).get("delegate_nodes")
        self.artifact, self.runtime, self.size_bytes = row.artifact, row.runtime, row.size_bytes
        self.latency_ms, self.throughput_ips = row.latency_ms, row.throughput_ips
        self.threads, self.threads_default = row.threads, row.threads_default
        self.status, self.batch_size, self.providers = row.status, 1, row.providers
        for key in _WHAT_RAN:
            setattr(self, key, getattr(row, key))
        self.validation = SplitNumbers.from_row(row)

    def validation_row(self) -> BenchRow:
        """The candidate as the row selection sees: its validation numbers, timed."""
        v = self.validation or SplitNumbers()
        return BenchRow(format=self.format, runtime=self.runtime, artifact=self.artifact,
                        status=self.status, batch_size=1, threads=self.threads,
                        latency_ms=self.latency_ms, size_bytes=self.size_bytes,
                        micro=self.micro, accuracy=v.accuracy, accuracy_delta=v.accuracy_delta,
                        top1_agreement=v.top1_agreement, parity_counts=v.parity_counts)

    def test_row(self) -> BenchRow:
        """The candidate's test-split numbers as a row (for the gate's re-check)."""
        return self.validation_row().replace(
            accuracy=self.accuracy, accuracy_delta=self.accuracy_delta,
            top1_agreement=self.top1_agreement,
            parity_counts=self.test.parity_counts if self.test else None)

    def to_dict(self) -> dict:
        """optimize.json's row: the keys of every candidate, then what was measured (a
        rung that was not tried or failed to export has none of it), then the test
        split's numbers once it has them."""
        d = {"rung": self.rung, "family": self.family, "format": self.format,
             "options": dict(self.options), "passed": self.passed}
        if self.kept_float is not None:
            d["float"] = list(self.kept_float)
        if self.micro is not None:
            d["micro"] = self.micro.to_dict()
        if self.validation is not None:
            d.update({k: getattr(self, k) for k in _MEASURED + _WHAT_RAN})
            d["validation"] = self.validation.to_dict()
        else:
            d["status"] = self.status
        d.update(reason=self.reason, seconds=self.seconds)
        if self.test is not None:
            d.update(self.test.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        """A candidate from an optimize.json row (unknown keys are ignored).

        Example:
            >>> row = Candidate("int8", "tflite-int", "tflite-int8").to_dict()
            >>> Candidate.from_dict(row).to_dict() == row
            True
        """
        known = {k: d[k] for k in ("rung", "family", "format", "options", "passed", "status",
                                   "reason", "seconds", "micro", *_MEASURED, *_WHAT_RAN)
                 if k in d}
        known["micro"] = as_micro(known.get("micro"))
        test = SplitNumbers.from_dict(d) if "top1_agreement" in d else None
        return cls(**known, kept_float=d.get("float"),
                   validation=SplitNumbers.from_dict(d.get("validation")), test=test)
