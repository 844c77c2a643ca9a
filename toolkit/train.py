"""Training: a tf.data input pipeline, compile, fit with checkpoint/resume, history.

``train_model`` keeps its state in ``workdir``: ``backup/`` (Keras BackupAndRestore:
weights, optimizer state and epoch, written every epoch), ``history.csv`` and
``tensorboard/``. A run killed mid-epoch continues with ``resume=True`` from the last
completed epoch. Transfer models (``toolkit.models.transfer``) are trained by their
recipe: feature extraction trains the head on cached base features; fine-tuning trains
the head, then unfreezes the top base layers at a lower learning rate.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeproof.atomic import atomic_write_bytes
from edgeproof.datasets import Dataset
from edgeproof.toolkit.augment import PRESETS
from edgeproof.toolkit.data import make_tf_dataset, steps_per_epoch
from edgeproof.toolkit.features import cached_features
from edgeproof.toolkit.models.transfer import unfreeze_top
from edgeproof.errors import UsageError
from edgeproof.tfcompat import keras, tf
from edgeproof.validation import check_choice, check_float, check_int

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (validated by ``validate``).

    Args:
        augment: an augmentation preset of ``toolkit.augment.PRESETS`` or None.
        class_weight: None or ``"balanced"`` (inverse class frequency).
        tensorboard: write TensorBoard logs to ``workdir/tensorboard``.
        head_epochs: fine-tuning models: epochs of the head-only phase (default half).
        fine_tune_lr: fine-tuning phase learning rate (default learning_rate / 10).
        label_smoothing: the loss's target smoothing (0: plain cross-entropy).
        weight_decay: ``adamw``'s decoupled weight decay.
        warmup_epochs: epochs of linear warm-up from 0 before the ``cosine`` decay.

    Example:
        >>> TrainConfig(epochs=3, augment="lab9").validate().epochs
        3
    """

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    patience: int | None = None
    verbose: int | None = None
    augment: str | None = None
    class_weight: str | None = None
    tensorboard: bool = True
    head_epochs: int | None = None
    fine_tune_lr: float | None = None
    lr_schedule: str | None = None  # None (constant) or "cosine"
    label_smoothing: float = 0.0
    weight_decay: float = 1e-4  # adamw only
    warmup_epochs: int = 0  # cosine only
    writer: bool = True  # writes history/TensorBoard (False: a non-chief worker)
    feature_cache: str | None = None  # *_features models: "hit" or "miss", set by training

    def validate(self) -> "TrainConfig":
        check_int("epochs", self.epochs, "train", low=1)
        check_int("batch_size", self.batch_size, "train", low=1)
        check_float("learning_rate", self.learning_rate, "train", low=0.0, low_open=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS, "train")
        check_int("seed", self.seed, "train", low=0)
        if self.patience is not None:
            check_int("patience", self.patience, "train", low=1)
        if self.augment is not None:
            check_choice("augmentation preset", self.augment, PRESETS, "train")
        if self.class_weight is not None:
            check_choice("class_weight", self.class_weight, ("balanced",), "train")
        if self.head_epochs is not None:
            check_int("head_epochs", self.head_epochs, "train", low=1, high=self.epochs)
        if self.fine_tune_lr is not None:
            check_float("fine_tune_lr", self.fine_tune_lr, "train", low=0.0, low_open=True)
        if self.lr_schedule is not None:
            check_choice("lr_schedule", self.lr_schedule, ("cosine",), "train")
        check_float("label_smoothing", self.label_smoothing, "train", low=0.0, high=0.5)
        check_float("weight_decay", self.weight_decay, "train", low=0.0)
        check_int("warmup_epochs", self.warmup_epochs, "train", low=0, high=self.epochs - 1)
        if self.warmup_epochs and self.lr_schedule != "cosine":
            raise UsageError("--warmup-epochs goes with --lr-schedule cosine (a warm-up, then "
                             "the decay).")
        return self


@dataclass
class TrainResult:
    model: object
    history: dict
    seconds: float
    epochs_run: int
    config: dict
    resumed_at: int = 0  # the first epoch this call ran (0: a fresh run)


def resume_epoch(backup: Path | None) -> int:
    """The first epoch a resumed fit runs: one past the last one BackupAndRestore saved."""
    if backup is None:
        return 0
    t = tf()
    ckpt = t.train.latest_checkpoint(str(backup / "chief")) or t.train.latest_checkpoint(str(backup))
    if not ckpt:
        return 0
    saved = int(t.train.load_checkpoint(ckpt).get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    return saved + 1 if saved >= 0 else 0


def make_optimizer(name: str, learning_rate, schedule: str | None = None,
                   total_steps: int | None = None, warmup_steps: int = 0,
                   weight_decay: float = 1e-4):
    """The optimizer ``name`` at ``learning_rate``, decayed by ``schedule`` over
    ``total_steps`` (``cosine``: Keras CosineDecay to zero after ``warmup_steps`` of linear
    warm-up; its step count is optimizer state, so a resumed run continues the same curve).

    Example:
        >>> make_optimizer("adamw", 1e-3, "cosine", 1000, 100).get_config()["name"]  # doctest: +SKIP
        'AdamW'
    """
    k = keras()
    if schedule == "cosine" and total_steps:
        if warmup_steps:  # warm-up from 0 up to the peak rate, then the decay from it
            learning_rate = k.optimizers.schedules.CosineDecay(
                0.0, total_steps - warmup_steps, warmup_target=learning_rate,
                warmup_steps=warmup_steps)
        else:
            learning_rate = k.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    if name == "sgd":
        return k.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    if name == "adamw":
        return k.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    return {"adam": k.optimizers.Adam, "rmsprop": k.optimizers.RMSprop}[name](
        learning_rate=learning_rate)


def training_loss(label_smoothing: float = 0.0):
    """Sparse categorical cross-entropy, with targets smoothed by ``label_smoothing``.

    tf-keras' sparse loss has no smoothing, so smoothed targets are built from the
    integer labels (one-hot, then Keras' own smoothed categorical cross-entropy).

    Example:
        >>> training_loss(0.0)
        'sparse_categorical_crossentropy'
    """
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    k, t = keras(), tf()

    def smoothed_crossentropy(y_true, y_pred):
        depth = t.shape(y_pred)[-1]
        onehot = t.one_hot(t.cast(t.reshape(y_true, [-1]), t.int32), depth, dtype=y_pred.dtype)
        return k.losses.categorical_crossentropy(onehot, y_pred,
                                                 label_smoothing=label_smoothing)

    return smoothed_crossentropy


def compile_model(model, cfg: TrainConfig, learning_rate: float | None = None,
                  total_steps: int | None = None, steps_per_epoch_: int = 0) -> None:
    optimizer = make_optimizer(cfg.optimizer, learning_rate or cfg.learning_rate,
                               cfg.lr_schedule, total_steps,
                               cfg.warmup_epochs * steps_per_epoch_, cfg.weight_decay)
    model.compile(optimizer=optimizer, loss=training_loss(cfg.label_smoothing),
                  metrics=["accuracy"])


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency ("balanced") weights, as scikit-learn computes them."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    w = compute_class_weight("balanced", classes=present, y=y)
    out = {c: 1.0 for c in range(num_classes)}
    out.update({int(c): float(v) for c, v in zip(present, w)})
    return out


def _callbacks(workdir, cfg, resume, phase: str, append: bool):
    k = keras()
    cbs = []
    if workdir is not None:
        backup = workdir / ("backup" if phase == "main" else f"backup_{phase}")
        if backup.exists() and not resume and cfg.writer:
            shutil.rmtree(backup)
        # Every worker backs up (Keras keeps a non-chief's copy in a temporary folder it
        # removes) and restores from the chief's; only the writer logs history.
        cbs.append(k.callbacks.BackupAndRestore(str(backup)))
        if cfg.writer:
            cbs.append(k.callbacks.CSVLogger(str(workdir / "history.csv"), append=append))
        if cfg.writer and cfg.tensorboard and _tensorboard_available():
            cbs.append(k.callbacks.TensorBoard(str(workdir / "tensorboard"), profile_batch=0))
    if cfg.patience:
        cbs.append(k.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                             restore_best_weights=True))
    return cbs


def _tensorboard_available() -> bool:
    import importlib.util
    import logging

    if importlib.util.find_spec("tensorboard") is None:
        logging.getLogger("edgeproof.train").info("tensorboard not installed: no TensorBoard logs "
                                                "(pip install tensorboard)")
        return False
    return True


def _fit(model, train, val, cfg, fit_kw, callbacks, initial_epoch=0, epochs=None):
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stderr.isatty() else 2)
    hist = model.fit(train, validation_data=val, epochs=epochs or cfg.epochs,
                     initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, **fit_kw)
    return {key: [float(v) for v in vals] for key, vals in hist.history.items()}


def _merge(a: dict, b: dict) -> dict:
    return {k: a.get(k, []) + b.get(k, []) for k in sorted(set(a) | set(b))}


def train_model(model, ds: Dataset, cfg: TrainConfig, workdir: str | Path | None = None,
                resume: bool = False, callbacks: list | None = None) -> TrainResult:
    """Fit ``model`` on ``ds``'s train split, validating on its val split.

    Args:
        workdir: where the per-epoch backup, ``history.csv`` and TensorBoard logs go
            (None: no checkpoint).
        resume: continue from ``workdir/backup`` when a previous run was interrupted;
            without it an existing backup is discarded.
        callbacks: extra Keras callbacks (run after the checkpointing ones).

    Example:
        >>> result = train_model(create_model("small_cnn", 10, (32, 32, 1)), ds,
        ...                      TrainConfig(epochs=2))  # doctest: +SKIP
    """
    cfg.validate()
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if resume and not any(workdir.glob("backup*")) and not (workdir / "head_done").exists():
            raise UsageError(f"Nothing to resume in {workdir}: no backup/ from an interrupted run.")
    fit_kw = {"class_weight": class_weights(ds.y_train, ds.num_classes)} \
        if cfg.class_weight else {}
    mode = getattr(model, "edgeproof_transfer", {}).get("mode")
    t0 = time.perf_counter()
    first = 0
    if mode == "features":
        history = _train_features(model, ds, cfg, workdir, resume, fit_kw, callbacks or [])
    elif mode == "finetune":
        history = _train_finetune(model, ds, cfg, workdir, resume, fit_kw, callbacks or [])
    else:
        steps = steps_per_epoch(len(ds.y_train), cfg.batch_size)
        compile_model(model, cfg, total_steps=cfg.epochs * steps, steps_per_epoch_=steps)
        backup = workdir / "backup" if workdir is not None and resume else None
        first = resume_epoch(backup)
        train, val, steps = _splits(ds, cfg, first, cfg.epochs)
        history = _fit(model, train, val, cfg, {**fit_kw, "steps_per_epoch": steps},
                       _callbacks(workdir, cfg, resume, "main", resume) + list(callbacks or []))
    seconds = time.perf_counter() - t0
    return TrainResult(model, history, seconds, len(history.get("loss", [])), asdict(cfg),
                       resumed_at=first)


def _splits(ds: Dataset, cfg: TrainConfig, first_epoch: int = 0, stop_epoch: int | None = None):
    """Train data for epochs ``first_epoch..stop_epoch-1``, val data, and steps per epoch."""
    train = make_tf_dataset(ds.x_train, ds.y_train, ds, cfg.batch_size, True, cfg.seed,
                            cfg.augment, epochs=(first_epoch, stop_epoch or cfg.epochs))
    val = make_tf_dataset(ds.x_val, ds.y_val, ds, cfg.batch_size, False, cfg.seed) \
        if len(ds.y_val) else None
    return train, val, steps_per_epoch(len(ds.y_train), cfg.batch_size)


def extract_features(model, x: np.ndarray, ds: Dataset, batch_size: int = 64) -> np.ndarray:
    """Run a feature-extraction model's frozen base once over uint8 images ``x``."""
    k = keras()
    feat_model = k.Model(model.inputs, model.edgeproof_features)
    data = make_tf_dataset(x, np.zeros(len(x), np.int64), ds, batch_size, False, 0)
    return feat_model.predict(data.map(lambda a, b: a), verbose=0)


def _train_features(model, ds, cfg, workdir, resume, fit_kw, extra):
    if cfg.augment:
        raise UsageError("Feature extraction caches the base's features once, so it cannot "
                         "augment; use the *_frozen model for --augment.")
    t = tf()
    head = model.get_layer(model.edgeproof_transfer["head"])
    base = model.get_layer(model.edgeproof_transfer["base"])
    feats, hits = {}, []
    for split in ("train", "val"):
        feats[split], hit = cached_features(base, split, getattr(ds, f"x_{split}"),
                                            ds.preprocessing,
                                            lambda x: extract_features(model, x, ds))
        hits.append(hit)
    cfg.feature_cache = "hit" if all(hits) else "miss"
    compile_model(head, cfg)
    train = t.data.Dataset.from_tensor_slices((feats["train"], ds.y_train)) \
        .shuffle(len(ds.y_train), seed=cfg.seed).batch(cfg.batch_size).prefetch(2)
    val = t.data.Dataset.from_tensor_slices((feats["val"], ds.y_val)).batch(cfg.batch_size) \
        if len(ds.y_val) else None
    history = _fit(head, train, val, cfg, fit_kw,
                   _callbacks(workdir, cfg, resume, "main", resume) + list(extra))
    compile_model(model, cfg)  # the full model (sharing the head's weights) is ready to use
    return history


def _train_finetune(model, ds, cfg, workdir, resume, fit_kw, extra):
    head_epochs = cfg.head_epochs or max(1, cfg.epochs // 2)
    marker = workdir / "head_done" if workdir is not None else None
    history = {}
    if marker is not None and resume and marker.exists():
        model.load_weights(str(workdir / "head_phase.weights.h5"))
    else:
        compile_model(model, cfg)
        first = resume_epoch(workdir / "backup_head") if marker is not None and resume else 0
        train, val, steps = _splits(ds, cfg, first, head_epochs)
        history = _fit(model, train, val, cfg, {**fit_kw, "steps_per_epoch": steps},
                       _callbacks(workdir, cfg, resume, "head", resume) + list(extra),
                       epochs=head_epochs)
        if marker is not None:
            model.save_weights(str(workdir / "head_phase.weights.h5"))
            atomic_write_bytes(marker, str(head_epochs).encode())
    if head_epochs >= cfg.epochs:
        return history
    unfreeze_top(model, model.edgeproof_transfer["fine_tune_layers"])
    compile_model(model, cfg, cfg.fine_tune_lr or cfg.learning_rate / 10.0)
    first = resume_epoch(workdir / "backup_finetune") if workdir is not None and resume else 0
    train, val, steps = _splits(ds, cfg, max(first, head_epochs), cfg.epochs)
    tuned = _fit(model, train, val, cfg, {**fit_kw, "steps_per_epoch": steps},
                 _callbacks(workdir, cfg, resume, "finetune", True) + list(extra),
                 initial_epoch=head_epochs)
    return _merge(history, tuned)
