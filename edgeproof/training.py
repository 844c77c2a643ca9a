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
from edgeproof.toolkit.distribute import precision_policy, strategy_scope
from edgeproof.toolkit.models import create_model, model_spec
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
    precision: str = "float32"
    strategy: str = "default"
    resume: bool = False
    force: bool = False
    command: str | None = None

    def model_kwargs(self) -> dict:
        """Builder options: transfer models take weights and the fine-tuning depth."""
        if model_spec(self.model).family != "transfer":
            return {}
        kw = {"weights": self.weights}
        if self.fine_tune_layers:
            kw["fine_tune_layers"] = self.fine_tune_layers
        return kw


def train_to_folder(job: TrainJob, status=None) -> dict:
    """Train ``job.model`` on ``job.dataset``; writes the model and returns train.json's dict.

    Raises:
        UsageError: ``out`` already holds a model (pass ``force`` or ``resume``).
    """
    say = status or (lambda msg: None)
    outdir = ensure_writable_dir(Path(job.out))
    if (outdir / "model.keras").exists() and not (job.force or job.resume):
        raise UsageError(f"{outdir / 'model.keras'} already exists; pass --force to overwrite or "
                         "--resume to continue training.")
    cfg = job.config.validate()
    say(f"loading dataset {job.dataset}")
    ds = load_dataset(job.dataset, job.image_size, cfg.seed)
    if job.train_fraction:
        ds.x_train, ds.y_train = subsample(ds.x_train, ds.y_train, job.train_fraction, cfg.seed)
        ds.provenance["train_fraction"] = job.train_fraction
    set_seed(cfg.seed, deterministic=job.strategy == "default")
    with precision_policy(job.precision), strategy_scope(job.strategy):
        model = create_model(job.model, ds.num_classes, ds.input_shape, **job.model_kwargs())
        say(f"training {job.model} ({model.count_params():,} params) on {ds.split_sizes}")
        result = train_model(model, ds, cfg, workdir=outdir, resume=job.resume)
    ctx = ExportContext(ds.class_names, ds.preprocessing,
                        source={"model_name": job.model, "sha256": model_fingerprint(model),
                                "dataset": ds.name})
    path = write_artifact(export_model(model, "keras", ctx), outdir, "model", force=True)
    summary = {"command": job.command, "model": job.model, "dataset": ds.summary(),
               "epochs_run": result.epochs_run, "seconds": round(result.seconds, 2),
               "resumed_at": result.resumed_at, "config": result.config,
               "precision": job.precision, "strategy": job.strategy,
               "final": {k: v[-1] for k, v in result.history.items()}, "model_path": str(path)}
    atomic_write_bytes(outdir / "train.json", json.dumps(summary, indent=2).encode())
    return summary
