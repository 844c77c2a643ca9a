"""`edgeproof run`: train, evaluate, export to every edge format, benchmark every export, report.

Each stage is one of the building blocks the other commands expose (toolkit, export,
bench); this module only wires them together, which makes it part of the application
layer: the one place besides the CLI that imports all three.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.atomic import ensure_writable_dir
from edgeproof.bench.core import bench_isolated, failed_rows
from edgeproof.bench.env import environment
from edgeproof.bench.recommend import (DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, Gate,
                                       closest, recommend)
from edgeproof.bench.report import build_report, write_report
from edgeproof.bench.runtimes.keras import KerasRuntime
from edgeproof.bench.threads import AUTO
from edgeproof.datasets import Dataset, load_dataset
from edgeproof.errors import UsageError
from edgeproof.export.context import (ExportContext, base_manifest, calibration_context,
                                      model_fingerprint)
from edgeproof.export.formats import DEFAULT_FORMATS, export_formats, get_format
from edgeproof.plots import write_plots
from edgeproof.report_page import write_report_page
from edgeproof.tfcompat import set_seed
from edgeproof.toolkit.distribute import float32_copy, precision_policy, resolve_precision
from edgeproof.toolkit.evaluate import evaluate_model, evaluation_summary
from edgeproof.toolkit.models import create_model, model_spec
from edgeproof.toolkit.train import TrainConfig, train_model
from edgeproof.validation import check_float, check_int


@dataclass
class RunConfig:
    """Options of `edgeproof run` (defaults: the offline demo on digits)."""

    dataset: str = "digits"
    model: str = "small_cnn"
    epochs: int = 20
    image_size: int | None = None
    batch_size: int = 32
    formats: tuple[str, ...] = DEFAULT_FORMATS
    out: str | None = None
    seed: int = 0
    calib_size: int = 200
    threads: int | str | None = AUTO
    precision: str = "auto"  # training dtype policy (toolkit.distribute.resolve_precision)
    min_agreement: float = DEFAULT_MIN_AGREEMENT  # the recommendation's gate (fractions)
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    force: bool = False
    command: str | None = None
    measure: dict = field(default_factory=dict)
    verbose: int | None = None  # Keras fit verbosity (None: a bar on a tty, else a line per epoch)

    def validate(self) -> "RunConfig":
        """Fail on a bad name or number before minutes of data loading."""
        model_spec(self.model)
        if not self.formats:
            raise UsageError("--formats is empty; see edgeproof formats.")
        for fmt in self.formats:
            get_format(fmt)
        check_int("calib_size", self.calib_size, "run", low=1)
        check_float("min_agreement", self.min_agreement, "run", low=0.0, high=1.0)
        check_float("max_accuracy_drop", self.max_accuracy_drop, "run", low=0.0)
        TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed).validate()
        return self


def default_out() -> Path:
    return Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def reference_probs(model, ds: Dataset, threads=None, preprocessing=None) -> np.ndarray:
    """The Keras model's probabilities on the test split, through the shared preprocessing
    (``preprocessing``: what the model expects, default the dataset's).

    Example:
        >>> reference_probs(model, load_dataset("digits")).shape  # doctest: +SKIP
        (360, 10)
    """
    ctx = ExportContext(ds.class_names, preprocessing or ds.preprocessing)
    manifest = base_manifest(model, ctx, "keras", {})
    with KerasRuntime(model, manifest, threads=threads) as rt:
        return rt.predict_images(ds.x_test)


def run(cfg: RunConfig, status=None) -> dict:
    """The main job. Returns the report dict (also written to ``cfg.out``).

    Example:
        >>> report = run(RunConfig(epochs=2, out="runs/demo"))  # doctest: +SKIP
        >>> [r["format"] for r in report["results"]]  # doctest: +SKIP
        ['keras', 'tflite-fp32', 'tflite-int8', 'onnx-fp32']
    """
    cfg.validate()
    out = ensure_writable_dir(Path(cfg.out) if cfg.out else default_out())
    say = status or (lambda msg: None)
    say(f"loading dataset {cfg.dataset}")
    ds = load_dataset(cfg.dataset, cfg.image_size, cfg.seed)
    set_seed(cfg.seed)
    policy, why = resolve_precision(cfg.precision)
    say(f"training {cfg.model} for {cfg.epochs} epochs in {policy} ({why})")
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                       verbose=cfg.verbose)
    with precision_policy(policy):
        model = create_model(cfg.model, ds.num_classes, ds.input_shape)
        result = train_model(model, ds, tcfg, workdir=out / "train")
    model = float32_copy(model)  # exporters and the reference get a plain float32 graph
    source = {"model_name": cfg.model, "sha256": model_fingerprint(model), "dataset": ds.name}
    ctx = calibration_context(ds, cfg.calib_size, cfg.seed, source)
    exported = export_formats(model, ctx, cfg.formats, out / "models", cfg.model,
                              force=cfg.force, status=say)
    say("computing the Keras reference on the test split")
    ref = reference_probs(model, ds)
    say("evaluating the Keras model (classification report, confusion matrix, Grad-CAM)")
    evaluation = evaluation_summary(
        evaluate_model(model, ds, out / "eval", history_csv=out / "train" / "history.csv",
                       probs=ref), out)
    results = []
    for done in exported:
        if done.path is None:
            results += failed_rows(done.error, format=done.format,
                                   runtime=get_format(done.format).runtime)
            continue
        say(f"benchmarking {done.format}")
        # A fresh process per artifact: this one has TensorFlow's thread pools busy from
        # training, which would slow every runtime measured here.
        rows, _ = bench_isolated(done.path, threads=cfg.threads, images=ds.x_test,
                                 labels=ds.y_test, reference=ref, report_dir=out,
                                 measure_kw=cfg.measure)
        results.append(rows[0])
    gate = Gate(cfg.min_agreement, cfg.max_accuracy_drop)
    recommendation = recommend(results, gate)
    report = build_report(
        command=cfg.command, dataset=ds.summary(),
        model={"name": cfg.model, "params": int(model.count_params()),
               "input_shape": list(ds.input_shape), "sha256": source["sha256"],
               "reference_accuracy": float((ref.argmax(1) == ds.y_test).mean())},
        training={"epochs": result.epochs_run, "seconds": round(result.seconds, 2),
                  "precision": {"requested": cfg.precision, "used": policy, "why": why},
                  "final": {k: v[-1] for k, v in result.history.items()},
                  "config": result.config},
        evaluation=evaluation, calibration=ctx.calibration_info,
        recommendation=recommendation,
        recommendation_note=None if recommendation else f"No export passes the gate "
                                                        f"({gate.describe()}); {closest(results, gate)}.",
        env=environment(), results=results)
    write_report(report, out)
    write_plots(results, out, ds.class_names, recommendation and recommendation["artifact"])
    write_report_page(report, out)
    report["out"] = str(out)
    return report
