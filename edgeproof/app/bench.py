"""`edgeproof bench` as a library call: many artifacts, batch sizes, a reference, a gate,
and the report.

``run_bench(BenchConfig(...))`` loads the evaluation split once, runs the reference,
measures every artifact (each in a fresh worker process unless ``in_process``) at every
batch size, judges the rows by the gate, and writes report.json / report.md / plots /
report.html (``--out``) or a report.json-shaped file (``--json``).

Example:
    >>> report, _ = run_bench(BenchConfig(["m.tflite", "m.onnx"], batch_sizes=(1, 32)))  # doctest: +SKIP
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.app.reporting import decide, write_json, write_outputs
from edgeproof.bench.one_artifact import evaluation_split
from edgeproof.bench.derive import artifact_manifest
from edgeproof.bench.env import environment, state_section
from edgeproof.bench.bounds import DEFAULT_CONFIDENCE
from edgeproof.bench.gate import Gate
from edgeproof.bench.report import build_report
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.suite import (bench_all, check_preprocessing, check_runtime_options,
                                   reference_probs_of)
from edgeproof.bench.threads import AUTO, DEFAULT
from edgeproof.bench.remote import Target, run_on
from edgeproof.bench.row import failed_rows
from edgeproof.bench.stats import METHOD
from edgeproof.errors import RuntimeFailure, UsageError
from edgeproof.machine import cpu_info, machine_state
from edgeproof.validation import check_int


@dataclass
class BenchConfig:
    """What ``edgeproof bench`` measures and how (the CLI flags, as fields).

    Args:
        artifacts: artifact paths.
        dataset, seed, limit: the evaluation data (None: latency on synthetic inputs).
        reference: an artifact whose answers are the parity reference.
        settings: how each artifact runs and is timed (``BenchSettings``).
        min_agreement, max_accuracy_drop: the gate's limits (fractions). Given, a failure
            fails the command; not given, the default gate still picks the recommendation.
        confidence, gate_mode: how sure the gate must be, and whether it decides on the
            bounds (``bound``) or the measured figures (``point``): ``bench.gate``.
        in_process: measure in this process instead of a fresh worker per artifact.
        on: where to measure: ``local`` and ``ssh://[user@]host[:port][/python]`` targets
            (empty: here, with no device column).
        repeat: runs per artifact (and device), interleaved, each in a fresh process.
        ssh_config: an OpenSSH config file for the ssh targets (``ssh -F``).
        out: folder for report.json, report.md, the plots and report.html; json: a
            report.json path.
    """

    artifacts: list[str]
    dataset: str | None = None
    seed: int = 0
    limit: int | None = None
    reference: str | None = None
    settings: BenchSettings = field(default_factory=BenchSettings)
    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    confidence: float = DEFAULT_CONFIDENCE
    gate_mode: str = "bound"
    in_process: bool = False
    on: list[str] = field(default_factory=list)
    repeat: int = 1
    ssh_config: str | None = None
    out: str | None = None
    json: str | None = None
    command: str | None = None
    quiet: bool = False

    @property
    def enforced(self) -> bool:
        """Whether the user asked for a gate (then a failure exits 1)."""
        return self.min_agreement is not None or self.max_accuracy_drop is not None

    @property
    def gate(self) -> Gate:
        return Gate.from_flags(self.min_agreement, self.max_accuracy_drop,
                               confidence=self.confidence, mode=self.gate_mode)

    def targets(self) -> list[Target]:
        """The ``--on`` targets, parsed (a malformed one is a UsageError)."""
        return [Target.parse(t) for t in dict.fromkeys(self.on)] or [Target("local")]

    def validate(self) -> "BenchConfig":
        """Refuse inconsistent settings before any artifact is loaded."""
        if not self.artifacts:
            raise UsageError("Name at least one artifact to benchmark.")
        if self.enforced and not (self.dataset and self.reference):
            raise UsageError("--min-agreement / --max-accuracy-drop need --dataset and --reference.")
        check_runtime_options(self.artifacts, self.settings)
        check_int("repeat", self.repeat, "bench", low=1)
        self.targets()
        if self.dataset:
            check_preprocessing(self.artifacts + ([self.reference] if self.reference else []),
                                self.settings.preprocess)
        return self


def run_bench(cfg: BenchConfig, status=None) -> tuple[dict, list[str]]:
    """Benchmark ``cfg.artifacts``; returns (the report, the paths written).

    The report's ``gate`` says whether every row passed (``answer``: passes, fails or
    undecided; each row its ``verdict``); the caller decides the exit code
    (``gate.enforced``).

    Example:
        >>> report, _ = run_bench(BenchConfig(["m.onnx"], dataset="digits", reference="m.keras",
        ...                                   min_agreement=0.99))  # doctest: +SKIP
        >>> report["gate"]["passed"]  # doctest: +SKIP
        True
    """
    cfg.validate()
    say = status or (lambda msg: None)
    summary, data = _evaluation(cfg, say)
    report_dir = Path(cfg.out) if cfg.out else Path(cfg.json).parent if cfg.json else Path(".")
    before = machine_state()
    rows, devices = _measure_on_targets(cfg, data, report_dir, say)
    sections = {"measurement": {**cfg.settings.record(), "repeat": cfg.repeat,
                                "interval": METHOD}}
    if cfg.on:
        sections["devices"] = devices
    if cfg.reference:  # with a reference: the gate, and which export to ship
        sections.update(decide(rows, cfg.gate, cfg.enforced))
    first = artifact_manifest(cfg.artifacts[0], cfg.settings.preprocess)
    report = build_report(command=cfg.command, dataset=summary,
                          model={"name": first.source.get("model_name"), "params": None,
                                 "input_shape": first.input.shape[1:],
                                 "sha256": first.source.get("sha256")},
                          results=rows, env={**environment(),
                                             "machine_state": state_section(before, rows)},
                          **sections)
    written = []
    if cfg.json:
        written.append(str(write_json(cfg.json, report)))
    if cfg.out:
        written += [str(p) for p in write_outputs(report, cfg.out)]
    return report, written


def _measure_on_targets(cfg: BenchConfig, data, report_dir: Path, say):
    """Rows from every target (``--on``), and what each device is."""
    rows, devices = [], {}
    for target in cfg.targets():
        if target.is_local:
            got = bench_all(cfg.artifacts, cfg.settings, data, report_dir, cfg.in_process,
                            cfg.quiet, cfg.repeat)
            devices[target.device_id] = {**cpu_info(), "hostname": socket.gethostname()}
        else:
            say(f"measuring on {target.device_id} over ssh")
            try:
                got, devices[target.device_id], _ = run_on(target, cfg.artifacts, cfg.settings,
                                                           data, report_dir, cfg.repeat,
                                                           cfg.ssh_config)
            except RuntimeFailure as e:  # the device failed: its rows say why; others go on
                got = [r for a in cfg.artifacts for r in failed_rows(
                    str(e), cfg.settings.batch_sizes, artifact=str(a))]
        if cfg.on:
            got = [r.replace(device_id=target.device_id) for r in got]
        rows += got
    return rows, devices


def _evaluation(cfg: BenchConfig, say) -> tuple[dict, EvalData | None]:
    """(dataset summary, the evaluation images with labels and reference probabilities)."""
    summary = {"name": None, "num_classes": None, "class_names": None, "split": None}
    if not cfg.dataset:
        return summary, None
    say(f"loading dataset {cfg.dataset}")
    manifest = artifact_manifest(cfg.artifacts[0], cfg.settings.preprocess)
    ds, images, labels = evaluation_split(cfg.dataset, manifest, cfg.seed, cfg.limit)
    ref = None
    if cfg.reference:
        say(f"reference {cfg.reference}")
        # The reference is not timed: its threads only need to be fast, not swept.
        threads = DEFAULT if cfg.settings.threads == AUTO else cfg.settings.threads
        ref = reference_probs_of(cfg.reference, EvalData(images, labels),
                                 BenchSettings(threads=threads,
                                               preprocess=cfg.settings.preprocess))
    return ds.summary(), EvalData(images, labels, ref)
