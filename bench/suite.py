"""`edgeproof bench` and `edgeproof parity` as library calls.

`bench`: many artifacts, batch sizes, a reference and a gate.

``run_bench(BenchConfig(...))`` loads the evaluation split once, runs the reference,
measures every artifact (each in a fresh worker process unless ``in_process``) at every
batch size under a progress bar, applies the parity gate and writes report.json /
report.md / plots. The CLI command is argparse plus this call.

Example:
    >>> report = run_bench(BenchConfig(["m.tflite", "m.onnx"], batch_sizes=(1, 32)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes
from edgeproof.bench.core import bench_artifact, bench_batches, bench_isolated, evaluation_split
from edgeproof.bench.env import environment
from edgeproof.bench.parity import compare, gate
from edgeproof.bench.recommend import (DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, Gate,
                                       closest, recommend)
from edgeproof.plots import write_plots
from edgeproof.report_page import write_report_page
from edgeproof.bench.report import build_report, write_report
from edgeproof.bench.runtimes import runtime_for, runtime_options
from edgeproof.bench.threads import AUTO
from edgeproof.errors import RuntimeFailure, UsageError
from edgeproof.bench.derive import artifact_manifest, preprocessing_known

MEASURE_DEFAULTS = {"min_runs": 50, "min_seconds": 1.0, "warmup_runs": 5, "warmup_seconds": 0.2}


@dataclass
class BenchConfig:
    """What ``edgeproof bench`` measures and how (the CLI flags, as fields).

    Args:
        artifacts: artifact paths.
        dataset, seed, limit: the evaluation data (None: latency on synthetic inputs).
        reference: an artifact whose answers are the parity reference.
        runtime, device, allow_fallback: how each artifact runs.
        threads: ``auto`` (a sweep per artifact picks the fastest), an int, or None
            (each runtime's default).
        runtime_options: ``{key: value}`` for the runtimes that declare ``key``.
        preprocess: ``--preprocess`` overrides (artifacts made elsewhere need them for
            accuracy when their files do not show how they scale pixels).
        batch_sizes: one result row per artifact and batch size.
        measure: ``min_runs``, ``min_seconds``, ``warmup_runs``, ``warmup_seconds``.
        bare_loop: also time a bare loop around each runtime's own call.
        min_agreement, max_accuracy_drop: the parity gate (needs dataset and reference).
        in_process: measure in this process instead of a fresh worker per artifact.
        out: folder for report.json, report.md and the plots; json: a report.json path.
    """

    artifacts: list[str]
    dataset: str | None = None
    seed: int = 0
    limit: int | None = None
    reference: str | None = None
    runtime: str | None = None
    device: str = "cpu"
    allow_fallback: bool = False
    threads: int | str | None = AUTO
    runtime_options: dict = field(default_factory=dict)
    preprocess: dict = field(default_factory=dict)
    batch_sizes: tuple[int, ...] = (1,)
    measure: dict = field(default_factory=lambda: dict(MEASURE_DEFAULTS))
    bare_loop: bool = False
    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    in_process: bool = False
    out: str | None = None
    json: str | None = None
    command: str | None = None
    quiet: bool = False

    @property
    def gated(self) -> bool:
        return self.min_agreement is not None or self.max_accuracy_drop is not None

    def validate(self) -> "BenchConfig":
        """Refuse inconsistent settings before any artifact is loaded."""
        if not self.artifacts:
            raise UsageError("Name at least one artifact to benchmark.")
        if self.gated and not (self.dataset and self.reference):
            raise UsageError("--min-agreement / --max-accuracy-drop need --dataset and --reference.")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UsageError(f"Batch sizes must be >= 1; got {list(self.batch_sizes)}.")
        _check_runtime_options(self)
        if self.dataset:  # accuracy needs to know the pixels each artifact expects
            named = dict.fromkeys(self.artifacts + ([self.reference] if self.reference else []))
            unknown = [a for a in named if not preprocessing_known(self.manifest(a))]
            if unknown:
                raise UsageError(f"{', '.join(Path(a).name for a in unknown)}: no manifest, and "
                                 "the file does not show how it scales pixels; pass --preprocess "
                                 "scale=...,offset=... (or drop --dataset to measure latency).")
        return self

    def manifest(self, artifact):
        """The artifact's manifest (derived from the file when it has none)."""
        return artifact_manifest(artifact, self.preprocess)


def _check_runtime_options(cfg: BenchConfig) -> None:
    """Every ``--runtime-option`` key must be taken by the runtime of some artifact."""
    names = set()
    for a in cfg.artifacts:
        try:
            names.add(cfg.runtime or runtime_for(a))
        except RuntimeFailure:
            continue  # the artifact becomes a failed row with this message
    accepted = runtime_options(names)
    unknown = sorted(set(cfg.runtime_options) - set(accepted))
    if unknown:
        valid = ", ".join(f"{k} ({', '.join(sorted(v))})" for k, v in sorted(accepted.items()))
        raise UsageError(f"Runtime option(s) {', '.join(unknown)} not taken by "
                         f"{', '.join(sorted(names)) or 'these artifacts'}. "
                         f"Valid options: {valid or 'none'}.")


def run_bench(cfg: BenchConfig, status=None) -> tuple[dict, list[str]]:
    """Benchmark ``cfg.artifacts``; returns (the report, the paths written).

    The report's ``gate`` says whether every row passed; the caller decides the exit code.

    Example:
        >>> report, _ = run_bench(BenchConfig(["m.onnx"], dataset="digits", reference="m.keras",
        ...                                   min_agreement=0.99))  # doctest: +SKIP
        >>> report["gate"]["passed"]  # doctest: +SKIP
        True
    """
    cfg.validate()
    say = status or (lambda msg: None)
    ds_summary, images, labels, ref = _evaluation(cfg, say)
    rows = _bench_all(cfg, images, labels, ref)
    sections = {"measurement": {**cfg.measure, "threads": cfg.threads,
                                "runtime_options": dict(cfg.runtime_options)}}
    if cfg.gated:
        fails = [f"{r['format']}/{r['runtime']}: {f}" for r in rows
                 if r["status"] == "ok" and r.get("batch_size") == cfg.batch_sizes[0]
                 and r.get("top1_agreement") is not None
                 for f in gate(r, cfg.min_agreement, cfg.max_accuracy_drop)]
        sections["gate"] = {"min_agreement": cfg.min_agreement,
                            "max_accuracy_drop": cfg.max_accuracy_drop, "passed": not fails,
                            "failures": fails}
    if cfg.gated:  # with a reference and a gate, say which export to ship
        gate_ = Gate(cfg.min_agreement if cfg.min_agreement is not None else DEFAULT_MIN_AGREEMENT,
                     cfg.max_accuracy_drop if cfg.max_accuracy_drop is not None
                     else DEFAULT_MAX_ACCURACY_DROP)
        sections["recommendation"] = recommend(rows, gate_)
        if sections["recommendation"] is None:
            sections["recommendation_note"] = (f"No export passes the gate ({gate_.describe()}); "
                                               f"{closest(rows, gate_)}.")
    first = cfg.manifest(cfg.artifacts[0])
    env = environment()
    report = build_report(command=cfg.command, dataset=ds_summary,
                          model={"name": first.source.get("model_name"), "params": None,
                                 "input_shape": first.input.shape[1:],
                                 "sha256": first.source.get("sha256")},
                          results=rows, env=env, **sections)
    return report, _write(cfg, report)


def _evaluation(cfg: BenchConfig, say):
    """(dataset summary, test images, labels, reference probabilities) per the config."""
    summary = {"name": None, "num_classes": None, "class_names": None, "split": None}
    if not cfg.dataset:
        return summary, None, None, None
    say(f"loading dataset {cfg.dataset}")
    ds, images, labels = evaluation_split(cfg.dataset, cfg.manifest(cfg.artifacts[0]),
                                          cfg.seed, cfg.limit)
    ref = None
    if cfg.reference:
        say(f"reference {cfg.reference}")
        row, ref = bench_artifact(cfg.reference, images=images, labels=labels,
                                  threads=None if cfg.threads == AUTO else cfg.threads,
                                  latency=False, preprocess=cfg.preprocess)
        if row["status"] != "ok":
            raise RuntimeFailure(f"Reference {cfg.reference} failed: {row['error']}")
    return ds.summary(), images, labels, ref


def _report_dir(cfg: BenchConfig) -> Path:
    return Path(cfg.out) if cfg.out else Path(cfg.json).parent if cfg.json else Path(".")


def _bench_all(cfg: BenchConfig, images, labels, ref) -> list[dict]:
    """Every artifact at every batch size, under a rich progress bar (stderr)."""
    from rich.console import Console
    from rich.progress import Progress

    sizes = list(cfg.batch_sizes)
    rows = []
    with Progress(console=Console(stderr=True), transient=True, disable=cfg.quiet) as bar:
        task = bar.add_task("bench", total=len(cfg.artifacts) * (len(sizes) + 1))
        for i, a in enumerate(cfg.artifacts):
            bar.update(task, description=f"{Path(a).name}")
            try:
                runtime = cfg.runtime or runtime_for(a)
            except RuntimeFailure:
                runtime = None  # bench_batches turns it into a failed row
            measure = bench_batches if cfg.in_process else bench_isolated
            got, _ = measure(a, runtime=runtime, device=cfg.device, threads=cfg.threads,
                             images=images, labels=labels, reference=ref, batch_sizes=sizes,
                             report_dir=_report_dir(cfg), allow_fallback=cfg.allow_fallback,
                             measure_kw=cfg.measure, runtime_options=cfg.runtime_options,
                             bare_loop=cfg.bare_loop, preprocess=cfg.preprocess,
                             progress=lambda msg: bar.advance(task))
            rows.extend(got)
            bar.update(task, completed=(i + 1) * (len(sizes) + 1))
    return rows


def _write(cfg: BenchConfig, report: dict) -> list[str]:
    """Write what the config asks for; returns the paths written."""
    written = []
    if cfg.json:
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cfg.json, json.dumps(report, indent=2, default=str).encode())
        written.append(str(cfg.json))
    if cfg.out:
        rec = report.get("recommendation")
        written += [str(p) for p in write_report(report, cfg.out)]
        written += [str(p) for p in write_plots(report["results"], cfg.out,
                                                (report.get("dataset") or {}).get("class_names"),
                                                rec and rec["artifact"])]
        written.append(str(write_report_page(report, cfg.out)))
    return written


def parity_check(reference, candidate, images, labels, min_agreement: float | None = None,
                 max_accuracy_drop: float | None = None, preprocess: dict | None = None) -> dict:
    """Run ``reference`` and ``candidate`` (each on its runtime, preprocessed from its own
    manifest) on the same images; returns ``compare``'s numbers, ``n`` and the ``gate``.

    Example:
        >>> parity_check("m.keras", "m-int8.tflite", x, y, 0.99)["gate"]["passed"]  # doctest: +SKIP
        True
    """
    probs = {}
    for role, path in (("reference", reference), ("candidate", candidate)):
        row, probs[role] = bench_artifact(path, images=images, labels=labels, latency=False,
                                          preprocess=preprocess)
        if row["status"] != "ok":
            raise RuntimeFailure(f"{role} {path} failed: {row['error']}")
    result = compare(probs["reference"], probs["candidate"], labels)
    result["n"] = int(len(labels))
    fails = gate(result, min_agreement, max_accuracy_drop)
    result["gate"] = {"min_agreement": min_agreement, "max_accuracy_drop": max_accuracy_drop,
                      "passed": not fails, "failures": fails}
    return result
