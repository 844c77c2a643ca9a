"""`edgekit run`: train, evaluate, export to every edge format, benchmark every export, report.

Each stage is one of the building blocks the other subcommands expose; this module
only wires them together and assembles report.json.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.core import bench_isolated
from bench.env import environment
from bench.report import write_report
from export.artifact import write_artifact
from export.context import ExportContext, model_fingerprint
from export.formats import DEFAULT_FORMATS, export_model, get_format
from toolkit import __version__
from toolkit.data import Dataset, calibration_indices, load_dataset
from toolkit.errors import EdgekitError
from toolkit.evaluate import evaluate_model
from toolkit.models import create_model
from toolkit.train import TrainConfig, train_model
from toolkit.validation import check_int

log = logging.getLogger("edgekit")


@dataclass
class RunConfig:
    """Options of `edgekit run` (defaults: the 2-minute offline demo on digits)."""

    dataset: str = "digits"
    model: str = "small_cnn"
    epochs: int = 20
    image_size: int | None = None
    batch_size: int = 32
    formats: tuple[str, ...] = DEFAULT_FORMATS
    out: str | None = None
    seed: int = 0
    calib_size: int = 200
    threads: int | None = None
    force: bool = False
    command: str | None = None
    measure: dict = field(default_factory=dict)
    verbose: int | None = None  # Keras fit verbosity (None: a bar on a tty, else a line per epoch)


def default_out() -> Path:
    return Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def calibration_context(ds: Dataset, n: int, seed: int, source: dict) -> ExportContext:
    """Class-balanced, deterministic calibration images from the train split.

    Raises:
        UsageError: the train split has fewer than ``n`` images.
    """
    if n > len(ds.y_train):
        from toolkit.errors import UsageError

        raise UsageError(f"--calib-size {n} is larger than the train split of {ds.name} "
                         f"({len(ds.y_train)} images); pass --calib-size {len(ds.y_train)} or less.")
    idx = calibration_indices(ds.y_train, n, seed)
    info = {"split": "train", "n": int(len(idx)), "requested": int(n), "seed": seed,
            "class_balanced": True, "dataset": ds.name,
            "indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest()}
    return ExportContext(ds.class_names, ds.preprocessing, ds.x_train[idx], info, source,
                         train_images=ds.x_train, train_labels=ds.y_train)


def export_all(model, ctx: ExportContext, formats, models_dir: Path, stem: str,
               force: bool = False, status=None) -> list[tuple[str, Path | None, str | None]]:
    """Export ``model`` to each format; returns (format, path or None, error or None)."""
    done = []
    for fmt in formats:
        if status:
            status(f"exporting {fmt}")
        try:
            art = export_model(model, fmt, ctx)
            path = write_artifact(art, models_dir, f"{stem}-{fmt}", force=force)
            done.append((fmt, path, None))
        except EdgekitError as e:
            log.warning("export %s failed: %s", fmt, e)
            done.append((fmt, None, str(e)))
    return done


def reference_probs(model, ds: Dataset, threads=None) -> np.ndarray:
    """The Keras model's probabilities on the test split, through the shared preprocessing."""
    from bench.runtimes.keras import KerasRuntime
    from export.context import base_manifest

    manifest = base_manifest(model, ExportContext(ds.class_names, ds.preprocessing), "keras", {})
    with KerasRuntime(model, manifest, threads=threads) as rt:
        return rt.predict_images(ds.x_test)


def run(cfg: RunConfig, status=None) -> dict:
    """The main job. Returns the report dict (also written to ``cfg.out``)."""
    from toolkit.models import model_spec

    model_spec(cfg.model)  # fail on a bad name before minutes of data loading
    for fmt in cfg.formats:
        get_format(fmt)
    if not cfg.formats:
        from toolkit.errors import UsageError

        raise UsageError("--formats is empty; see edgekit formats.")
    check_int("calib_size", cfg.calib_size, "run", low=1)
    TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed).validate()
    from export.artifact import ensure_writable_dir

    out = ensure_writable_dir(Path(cfg.out) if cfg.out else default_out())
    say = status or (lambda msg: None)
    say(f"loading dataset {cfg.dataset}")
    ds = load_dataset(cfg.dataset, cfg.image_size, cfg.seed)
    from toolkit.tfcompat import set_seed

    set_seed(cfg.seed)
    model = create_model(cfg.model, ds.num_classes, ds.input_shape)
    say(f"training {cfg.model} for {cfg.epochs} epochs")
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                       verbose=cfg.verbose)
    result = train_model(model, ds, tcfg, workdir=out / "train")
    source = {"model_name": cfg.model, "sha256": model_fingerprint(model), "dataset": ds.name}
    ctx = calibration_context(ds, cfg.calib_size, cfg.seed, source)
    exported = export_all(model, ctx, cfg.formats, out / "models", cfg.model, cfg.force, say)
    say("computing the Keras reference on the test split")
    ref = reference_probs(model, ds, cfg.threads)
    say("evaluating the Keras model (classification report, confusion matrix, Grad-CAM)")
    evaluation = evaluation_summary(
        evaluate_model(model, ds, out / "eval", history_csv=out / "train" / "history.csv",
                       probs=ref), out)
    results = []
    for fmt, path, err in exported:
        if path is None:
            results.append(_failed_row(fmt, err))
            continue
        say(f"benchmarking {fmt}")
        # A fresh process per artifact: this one has TensorFlow's thread pools busy from
        # training, which would slow every runtime measured here.
        rows, _ = bench_isolated(path, threads=cfg.threads, images=ds.x_test, labels=ds.y_test,
                                 reference=ref, report_dir=out, measure_kw=cfg.measure)
        results.append(rows[0])
    report = {
        "edgekit_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": cfg.command,
        "dataset": ds.summary(),
        "model": {"name": cfg.model, "params": int(model.count_params()),
                  "input_shape": list(ds.input_shape), "sha256": source["sha256"],
                  "reference_accuracy": float((ref.argmax(1) == ds.y_test).mean())},
        "training": {"epochs": result.epochs_run, "seconds": round(result.seconds, 2),
                     "final": {k: v[-1] for k, v in result.history.items()},
                     "config": result.config},
        "evaluation": evaluation,
        "calibration": ctx.calibration_info,
        "env": environment(cfg.threads),
        "results": results,
    }
    write_report(report, out)
    report["out"] = str(out)
    return report


def evaluation_summary(ev: dict, out: Path) -> dict:
    """The report.json view of ``evaluate_model``'s result: per-class scores, the worst
    images and file paths relative to the run folder (the full copy is eval/metrics.json)."""

    def rel(p: str) -> str:
        return Path(p).relative_to(out).as_posix() if Path(p).is_relative_to(out) else p

    pc = ev["per_class"]
    keep = ("precision", "recall", "f1-score", "support")
    summary = {
        "split": ev["split"], "n": ev["n"], "accuracy": ev["accuracy"],
        "macro_avg": {k: pc["macro avg"][k] for k in keep},
        "weighted_avg": {k: pc["weighted avg"][k] for k in keep},
        "per_class": {name: {k: v[k] for k in keep} for name, v in pc.items()
                      if name not in ("accuracy", "macro avg", "weighted avg")},
        "confusion_matrix": ev["confusion_matrix"], "worst": ev["worst"],
        "files": {k: rel(v) for k, v in ev["files"].items()},
        "gradcam": [rel(p) for p in ev.get("gradcam", [])],
    }
    if ev.get("gradcam_skipped"):
        summary["gradcam_skipped"] = ev["gradcam_skipped"]
    return summary


def _failed_row(fmt: str, err: str | None) -> dict:
    return {"format": fmt, "runtime": get_format(fmt).runtime, "device": "cpu", "providers": [],
            "artifact": None, "size_bytes": None, "accuracy": None, "accuracy_delta": None,
            "top1_agreement": None, "max_abs_diff": None, "batch_size": 1, "threads": None,
            "latency_ms": None, "status": "failed", "error": err}


def context_for_model(model, model_path, calib: str | None, calib_size: int, seed: int,
                      scale: float | None = None, offset: float | None = None,
                      class_names: list[str] | None = None):
    """Export context for a model a user brings; returns (context, dataset or None).

    Class names and preprocessing come from the model's manifest when edgekit wrote
    one, else from flags and the calibration dataset, else defaults (1/255 scaling).
    """
    from export.manifest import Preprocessing, manifest_path, Manifest
    from toolkit.errors import UsageError

    h, w, c = (int(d) for d in model.inputs[0].shape[1:4])
    side = manifest_path(model_path)
    known = Manifest.load(side) if side.exists() else None
    pre = known.preprocessing if known else Preprocessing(
        size=[h, w], color="grayscale" if c == 1 else "rgb")
    if scale is not None:
        pre.scale = float(scale)
    if offset is not None:
        pre.offset = float(offset)
    ds = load_dataset(calib, image_size=h, seed=seed) if calib else None
    names = class_names or (known.class_names if known else None) or \
        (ds.class_names if ds else None) or [str(i) for i in range(int(model.outputs[0].shape[-1]))]
    n_out = int(model.outputs[0].shape[-1])
    if len(names) != n_out:
        raise UsageError(f"The model has {n_out} outputs but {len(names)} class names were given "
                         f"({'the calibration dataset' if ds and not class_names else '--class-names'}).")
    source = {"model_name": getattr(model, "name", None), "path": str(model_path),
              "sha256": model_fingerprint(model)}
    if ds is None:
        return ExportContext(list(names), pre, source=source), None
    ctx = calibration_context(ds, calib_size, seed, source)
    ctx.class_names, ctx.preprocessing = list(names), pre
    return ctx, ds
