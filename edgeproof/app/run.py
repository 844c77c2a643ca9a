"""`edgeproof run`: train, evaluate, export to every edge format, benchmark every export, report.

Each stage is one of the building blocks the other commands expose (toolkit, export,
bench); this module only wires them together, which makes it part of the application
layer: the one place besides the CLI that imports all three.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path


from edgeproof.app.reference_answers import reference_probs
from edgeproof.app.reporting import decide, write_outputs
from edgeproof.app.target import check_target, judge_fit, record_measured, runtime_for_target
from edgeproof.atomic import ensure_writable_dir
from edgeproof.bench.one_artifact import bench_isolated
from edgeproof.bench.env import environment, state_section
from edgeproof.bench.gate import Gate
from edgeproof.bench.report import build_report
from edgeproof.bench.row import failed_rows
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.threads import AUTO, Threads
from edgeproof.datasets import load_dataset
from edgeproof.errors import UsageError
from edgeproof.machine import machine_state
from edgeproof.export.context import calib_size_for, calibration_context, model_fingerprint
from edgeproof.export.formats import DEFAULT_FORMATS, export_formats, get_format
from edgeproof.tfcompat import set_seed
from edgeproof.toolkit.distribute import float32_copy, precision_policy, resolve_precision
from edgeproof.toolkit.evaluate import evaluate_model, evaluation_summary
from edgeproof.toolkit.models import create_model, model_spec
from edgeproof.toolkit.train import TrainConfig, train_model
from edgeproof.validation import check_int


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
    calib_size: int | None = None  # None: 200, or the whole train split when smaller
    threads: Threads = AUTO
    precision: str = "auto"  # training dtype policy (toolkit.distribute.resolve_precision)
    gate: Gate = Gate()  # the recommendation's gate (budgets included)
    target: str = "host"  # mcu: .tflite exports on TFLM, ranked by MACs (app.target)
    force: bool = False
    command: str | None = None
    settings: BenchSettings = field(default_factory=BenchSettings)
    verbose: int | None = None  # Keras fit verbosity (None: a bar on a tty, else a line per epoch)

    def validate(self) -> "RunConfig":
        """Fail on a bad name or number before minutes of data loading."""
        model_spec(self.model)
        check_target(self.target)
        if not self.formats:
            raise UsageError("--formats is empty; see edgeproof formats.")
        for fmt in self.formats:
            get_format(fmt)
        if self.calib_size is not None:
            check_int("calib_size", self.calib_size, "run", low=1)
        TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed).validate()
        return self


def default_out() -> Path:
    return Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


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
    # Checked before minutes of training: an explicit size the data cannot give is an error.
    calib_n, calib_note = calib_size_for(cfg.calib_size, len(ds.y_train), ds.name)
    if calib_note:
        say(calib_note)
    model, result, policy, why = _train(cfg, ds, out, say)
    source = {"model_name": cfg.model, "sha256": model_fingerprint(model), "dataset": ds.name}
    ctx = calibration_context(ds, calib_n, cfg.seed, source)
    if calib_note:
        ctx.calibration_info["note"] = calib_note
    exported = export_formats(model, ctx, cfg.formats, out / "models", cfg.model,
                              force=cfg.force, status=say)
    say("computing the Keras reference on the test split")
    ref = reference_probs(model, ds)
    say("evaluating the Keras model (classification report, confusion matrix, Grad-CAM)")
    evaluation = evaluation_summary(
        evaluate_model(model, ds, out / "eval", history_csv=out / "train" / "history.csv",
                       probs=ref), out)
    before = machine_state()
    results = _bench(cfg, exported, EvalData(ds.x_test, ds.y_test, ref), out, say)
    judge_fit(results, cfg.gate, cfg.target, out)
    if cfg.target == "mcu":
        for problem in record_measured(results, out):
            say(f"arena not recorded in the manifest: {problem}")
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
        **decide(results, cfg.gate, enforced=False, target=cfg.target), results=results,
        env={**environment(), "machine_state": state_section(before, results)})
    write_outputs(report, out)
    report["out"] = str(out)
    return report


def _train(cfg: RunConfig, ds, out: Path, say):
    """The model trained under the precision policy, as a plain float32 graph."""
    set_seed(cfg.seed)
    policy, why = resolve_precision(cfg.precision)
    say(f"training {cfg.model} for {cfg.epochs} epochs in {policy} ({why})")
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                       verbose=cfg.verbose)
    with precision_policy(policy):
        model = create_model(cfg.model, ds.num_classes, ds.input_shape)
        result = train_model(model, ds, tcfg, workdir=out / "train")
    return float32_copy(model), result, policy, why  # exporters get a float32 graph


def _bench(cfg: RunConfig, exported, data: EvalData, out: Path, say) -> list:
    """Each export measured in a fresh process (this one has TensorFlow's thread pools busy
    from training, which would slow every runtime measured here)."""
    results = []
    settings = cfg.settings.replace(threads=cfg.threads)
    for done in exported:
        if done.path is None:
            results += failed_rows(done.error, format=done.format,
                                   runtime=get_format(done.format).runtime)
            continue
        say(f"benchmarking {done.format}")
        runtime = runtime_for_target(cfg.target, done.path)  # --target mcu: TFLM
        rows, _ = bench_isolated(done.path, settings.replace(runtime=runtime) if runtime
                                 else settings, data, out)
        results.append(rows[0])
    return results
