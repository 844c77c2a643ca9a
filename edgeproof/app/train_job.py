"""`edgeproof train` as a library call: a registered model trained on a dataset, written as
``model.keras`` with its manifest, ``history.csv`` and ``train.json``.

Training is the toolkit's job and writing the model as an artifact (with its manifest)
is the export package's; this application-layer module joins them.

Example:
    >>> summary = train_to_folder(TrainJob(dataset="digits", model="small_cnn", epochs=2,
    ...                                    out="runs/train"))  # doctest: +SKIP
    >>> summary["epochs_run"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes, ensure_writable_dir
from edgeproof.datasets import load_dataset, subsample
from edgeproof.errors import UsageError
from edgeproof.export.artifact import write_artifact
from edgeproof.export.context import ExportContext, model_fingerprint
from edgeproof.export.formats import export_model
from edgeproof.tfcompat import set_seed
from edgeproof.machine import cpu_info
from edgeproof.manifest import library_versions
from edgeproof.toolkit.distribute import (cluster, float32_copy, make_strategy, precision_policy,
                                         resolve_precision, strategy_summary)
from edgeproof.toolkit.models import create_model, model_spec
from edgeproof.toolkit.models.init import apply_init
from edgeproof.toolkit.train import TrainConfig, train_model


@dataclass
class TrainJob:
    """What to train, on what, and where to write it (the ``edgeproof train`` flags)."""

    dataset: str
    model: str
    out: str
    config: TrainConfig = field(default_factory=TrainConfig)
    image_size: int | None = None
    train_fraction: float | None = None
    weights: str = "imagenet"
    fine_tune_layers: int | None = None
    precision: str = "auto"
    strategy: str = "default"
    resume: bool = False
    force: bool = False
    command: str | None = None
    init: str = "keras"  # or "pytorch": PyTorch's default Conv2D/Dense initialisation

    def model_kwargs(self) -> dict:
        """Builder options: transfer models take weights and the fine-tuning depth."""
        if model_spec(self.model).family != "transfer":
            return {}
        kw = {"weights": self.weights}
        if self.fine_tune_layers:
            kw["fine_tune_layers"] = self.fine_tune_layers
        return kw


def _refuse_before_work(job: TrainJob, outdir: Path) -> None:
    """The job's own contradictions, said before any data is loaded."""
    if job.init != "keras" and model_spec(job.model).family == "transfer":
        raise UsageError(f"--init {job.init} re-draws every layer's weights; {job.model} is a "
                         "transfer model (its base keeps its weights): leave --init out.")
    if (outdir / "model.keras").exists() and not (job.force or job.resume):
        raise UsageError(f"{outdir / 'model.keras'} already exists; pass --force to overwrite or "
                         "--resume to continue training.")


def train_to_folder(job: TrainJob, status=None) -> dict:
    """Train ``job.model`` on ``job.dataset``; writes the model and returns train.json's dict.

    With ``strategy="multiworker"`` every worker of ``TF_CONFIG`` runs this; the strategy
    is created first (TensorFlow requires it before any other op), and only the chief
    writes the model, its manifest, history.csv and train.json. Each worker's result
    carries a hash of its final weights, equal on every worker.

    Raises:
        UsageError: ``out`` already holds a model (pass ``force`` or ``resume``).
    """
    say = status or (lambda msg: None)
    strategy = make_strategy(job.strategy) if job.strategy == "multiworker" else None
    chief = cluster()["chief"] if strategy is not None else True
    outdir = ensure_writable_dir(Path(job.out))
    _refuse_before_work(job, outdir)
    cfg = dataclasses.replace(job.config, writer=chief).validate()
    policy, why = resolve_precision(job.precision)
    say(f"precision {policy} ({why})")
    say(f"loading dataset {job.dataset}")
    ds = load_dataset(job.dataset, job.image_size, cfg.seed)
    if job.train_fraction:
        ds.x_train, ds.y_train = subsample(ds.x_train, ds.y_train, job.train_fraction, cfg.seed)
        ds.provenance["train_fraction"] = job.train_fraction
    set_seed(cfg.seed, deterministic=job.strategy == "default")
    strategy = strategy or make_strategy(job.strategy)
    with precision_policy(policy), strategy.scope():
        model = create_model(job.model, ds.num_classes, ds.input_shape, **job.model_kwargs())
        reinit = apply_init(model, job.init, cfg.seed)
        if reinit:
            say(f"init {job.init}: {len(reinit)} Conv2D/Dense layers re-drawn")
        say(f"training {job.model} ({model.count_params():,} params) on {ds.split_sizes}")
        result = train_model(model, ds, cfg, workdir=outdir, resume=job.resume)
    weights = model_fingerprint(model)
    summary = {"command": job.command, "model": job.model, "dataset": ds.summary(),
               "epochs_run": result.epochs_run, "fit_seconds": round(result.seconds, 2),
               "resumed_at": result.resumed_at, "config": result.config, "seed": cfg.seed,
               "precision": {"requested": job.precision, "used": policy, "why": why},
               "init": job.init,
               "strategy": strategy_summary(strategy, job.strategy),
               "feature_cache": cfg.feature_cache, "weights_sha256": weights,
               "versions": library_versions(), "machine": cpu_info(),
               "final": {k: v[-1] for k, v in result.history.items()}}
    if chief:
        # Converters get a plain float32 graph with the same weights; under a distribution
        # strategy that graph is also rebuilt outside it, so that saving needs no peers.
        saved = float32_copy(model, always=job.strategy != "default")
        ctx = ExportContext(ds.class_names, ds.preprocessing,
                            source={"model_name": job.model, "sha256": weights,
                                    "dataset": ds.name, "trained_in": policy})
        summary["model_path"] = str(write_artifact(export_model(saved, "keras", ctx), outdir,
                                                   "model", force=True))
        atomic_write_bytes(outdir / "train.json", json.dumps(summary, indent=2).encode())
    return summary
