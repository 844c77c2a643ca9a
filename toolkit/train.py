"""Training: a tf.data input pipeline, compile, fit with checkpoint/resume, history.

``train_model`` keeps its state in ``workdir``: ``backup/`` (Keras BackupAndRestore:
weights, optimizer state and epoch, written every epoch) and ``history.csv``. A run
killed mid-epoch continues with ``resume=True`` from the last completed epoch.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from toolkit.data import Dataset
from toolkit.errors import UsageError
from toolkit.tfcompat import keras, tf
from toolkit.validation import check_choice, check_float, check_int

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (validated by ``validate``)."""

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    patience: int | None = None
    verbose: int | None = None

    def validate(self) -> "TrainConfig":
        check_int("epochs", self.epochs, "train", low=1)
        check_int("batch_size", self.batch_size, "train", low=1)
        check_float("learning_rate", self.learning_rate, "train", low=0.0, low_open=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS, "train")
        check_int("seed", self.seed, "train", low=0)
        if self.patience is not None:
            check_int("patience", self.patience, "train", low=1)
        return self


@dataclass
class TrainResult:
    model: object
    history: dict
    seconds: float
    epochs_run: int
    config: dict


def make_tf_dataset(x: np.ndarray, y: np.ndarray, ds: Dataset, batch_size: int,
                    shuffle: bool, seed: int):
    """uint8 arrays -> batched float tf.data with the dataset's scale/offset, prefetched."""
    t = tf()
    pre = ds.preprocessing
    data = t.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    scale, offset = float(pre.scale), float(pre.offset)
    data = data.batch(batch_size).map(
        lambda a, b: (t.cast(a, t.float32) * scale + offset, b),
        num_parallel_calls=t.data.AUTOTUNE, deterministic=True)
    return data.prefetch(t.data.AUTOTUNE)


def compile_model(model, cfg: TrainConfig) -> None:
    k = keras()
    opt = {"adam": k.optimizers.Adam, "sgd": k.optimizers.SGD,
           "rmsprop": k.optimizers.RMSprop}[cfg.optimizer](learning_rate=cfg.learning_rate)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def train_model(model, ds: Dataset, cfg: TrainConfig, workdir: str | Path | None = None,
                resume: bool = False) -> TrainResult:
    """Fit ``model`` on ``ds``'s train split, validating on its val split.

    Args:
        workdir: where the per-epoch backup and ``history.csv`` go (None: no checkpoint).
        resume: continue from ``workdir/backup`` when a previous run was interrupted;
            without it an existing backup is discarded.

    Example:
        >>> result = train_model(create_model("small_cnn", 10, (32, 32, 1)), ds,
        ...                      TrainConfig(epochs=2))  # doctest: +SKIP
    """
    cfg.validate()
    k = keras()
    compile_model(model, cfg)
    callbacks = []
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        backup = workdir / "backup"
        if backup.exists() and not resume:
            shutil.rmtree(backup)
        if resume and not backup.exists():
            raise UsageError(f"Nothing to resume in {workdir}: no backup/ from an interrupted run.")
        callbacks += [k.callbacks.BackupAndRestore(str(backup)),
                      k.callbacks.CSVLogger(str(workdir / "history.csv"), append=resume)]
    if cfg.patience:
        callbacks.append(k.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                   restore_best_weights=True))
    train = make_tf_dataset(ds.x_train, ds.y_train, ds, cfg.batch_size, True, cfg.seed)
    val = make_tf_dataset(ds.x_val, ds.y_val, ds, cfg.batch_size, False, cfg.seed) \
        if len(ds.y_val) else None
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stderr.isatty() else 2)
    t0 = time.perf_counter()
    hist = model.fit(train, validation_data=val, epochs=cfg.epochs, callbacks=callbacks,
                     verbose=verbose)
    seconds = time.perf_counter() - t0
    history = {key: [float(v) for v in vals] for key, vals in hist.history.items()}
    return TrainResult(model, history, seconds, len(history.get("loss", [])), asdict(cfg))
