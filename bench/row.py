"""One result row: an artifact measured on one runtime at one batch size.

Code passes ``BenchRow`` objects; ``to_dict()`` gives report.json's row (the keys README
documents, in that order; optional sections only when measured) and ``from_dict`` reads
one back (a report, a worker's answer).

Example:
    >>> row = BenchRow(format="onnx-fp32", runtime="onnxruntime", artifact="m.onnx")
    >>> row.status, row.to_dict()["threads"]
    ('failed', None)
    >>> BenchRow.from_dict(row.to_dict()) == row
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from edgeproof.bench.micro_figures import MicroFigures, as_micro
from edgeproof.bench.verdict import Verdict

# Keys written only when the row has them (a bare-loop check, a microcontroller
# interpreter's memory, a remote device, parity's image counts and the gate's answer),
# so an ordinary row stays as README shows it.
OPTIONAL = ("bare_loop", "micro", "device_id", "threads_default", "parity_counts", "verdict")


@dataclass
class BenchRow:
    """What was measured, on what, and how it went (``status`` ok | failed, ``error``).

    Attributes (beyond the names): ``accuracy`` on the labelled images; ``accuracy_delta``,
    ``top1_agreement``, ``max_abs_diff``, ``mean_abs_diff``, ``kl_divergence`` and
    ``per_class_accuracy_delta`` against the reference on the same images, and
    ``parity_counts`` the image counts behind them (``bench.bounds.PairedCounts`` as a
    dict); ``verdict`` the gate's answer (``bench.gate.Verdict``); ``threads`` the
    count that ran (``threads_default``: the runtime's own choice); ``latency_ms`` p50, p90,
    p99, mean, std, min, n and first_ms, per call of ``batch_size`` images.
    """

    format: str | None = None
    runtime: str | None = None
    device: str | None = None
    ran_on: str | None = None  # what ran, in words: library, provider, hardware / host
    requested_device: str | None = None
    fallback: bool = False
    providers: list = field(default_factory=list)
    artifact: str | None = None
    size_bytes: int | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None
    top1_agreement: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    kl_divergence: float | None = None
    per_class_accuracy_delta: list | None = None
    parity_counts: dict | None = None
    batch_size: int | None = None
    threads: int | None = None
    latency_ms: dict | None = None
    throughput_ips: float | None = None
    load_ms: float | None = None
    preprocess_ms: float | None = None
    memory_mb: dict | None = None
    runtime_details: dict | None = None
    thread_sweep: dict | None = None
    status: str = "failed"
    error: str | None = None
    threads_default: bool | None = None
    bare_loop: dict | None = None
    micro: MicroFigures | None = None  # a JSON dict given is read (as_micro)
    device_id: str | None = None
    verdict: Verdict | None = None
    # The timed calls' milliseconds per batch size, for pooling repeats; never written out.
    samples: dict | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.micro = as_micro(self.micro)  # report.json's and optimize.json's dicts too

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50(self) -> float | None:
        return (self.latency_ms or {}).get("p50")

    @property
    def precision(self) -> str | None:
        """The inference precision the runtime read back (``runtime_details["precision"]``,
        e.g. OpenVINO's ``bf16+f32``), None where the runtime does not report one."""
        return (self.runtime_details or {}).get("precision")

    def replace(self, **changes) -> "BenchRow":
        """A copy with ``changes`` (one artifact's row per batch size)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """report.json's row: every key always, the optional ones when set."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "samples"}
        d["verdict"] = self.verdict and self.verdict.to_dict()
        d["micro"] = self.micro and self.micro.to_dict()
        for key in OPTIONAL:
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BenchRow":
        """A row from report.json (unknown keys are ignored: newer writers add keys)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if isinstance(kw.get("verdict"), dict):
            kw["verdict"] = Verdict.from_dict(kw["verdict"])
        return cls(**kw)


def failed_rows(error: str, batch_sizes=(1,), **known) -> list[BenchRow]:
    """Rows (one per batch size) of an artifact that could not be measured.

    Example:
        >>> failed_rows("conversion failed", format="onnx-int8")[0].status
        'failed'
    """
    return [BenchRow(status="failed", error=error, batch_size=b, **known) for b in batch_sizes]


def as_rows(rows) -> list[BenchRow]:
    """``rows`` as BenchRow objects (dicts from a report are read back).

    Example:
        >>> as_rows([{"format": "keras", "status": "ok"}])[0].ok
        True
    """
    return [r if isinstance(r, BenchRow) else BenchRow.from_dict(r) for r in rows]
