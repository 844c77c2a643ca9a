"""`edgeproof train`: train a registered model on a dataset, with checkpoints and resume."""

from __future__ import annotations

from edgeproof.cli.common import add_dataset_args, fraction, out, positive_int, status_printer
from edgeproof.app.train_job import TrainJob, train_to_folder
from edgeproof.toolkit.models.init import INITS
from edgeproof.toolkit.train import TrainConfig


def register(sub) -> None:
    p = sub.add_parser("train", help="train a registered model",
                       description="Train a registered model; writes OUT/model.keras (+ manifest), "
                       "OUT/history.csv, OUT/tensorboard/ and OUT/train.json. A checkpoint "
                       "(weights + optimizer) is kept every epoch: after an interrupt, rerun "
                       "with --resume.")
    add_dataset_args(p, default="digits")
    p.add_argument("--model", default="small_cnn", help="a registered model (edgeproof models)")
    p.add_argument("--weights", default="imagenet",
                   help="transfer models: imagenet | none | FILE (default imagenet)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--image-size", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", default="adam",
                   help="adam | adamw (decoupled weight decay) | sgd (momentum 0.9) | rmsprop")
    p.add_argument("--weight-decay", type=float, default=1e-4,
                   help="adamw's weight decay (default 1e-4)")
    p.add_argument("--lr-schedule", default=None, choices=["cosine"],
                   help="decay the learning rate to zero over the run (default: constant)")
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="with --lr-schedule cosine: epochs of linear warm-up first (default 0)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="smooth the loss's one-hot targets by this much (default 0)")
    p.add_argument("--augment", default=None, metavar="PRESET", help="chollet | lab8 | lab9")
    p.add_argument("--init", default="keras", choices=INITS,
                   help="weight initialisation: keras (Glorot-uniform kernels, zero biases; the "
                        "default) or pytorch (PyTorch's default for Conv2d/Linear, "
                        "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases)")
    p.add_argument("--class-weight", default=None, choices=["balanced"],
                   help="weight classes by inverse frequency")
    p.add_argument("--train-fraction", type=fraction, default=None,
                   help="train on a class-balanced fraction of the train split (quick runs)")
    p.add_argument("--fine-tune-layers", type=positive_int, default=None,
                   help="*_finetune models: base layers unfrozen after the head phase (50)")
    p.add_argument("--head-epochs", type=positive_int, default=None,
                   help="*_finetune models: epochs of the head-only phase (default half)")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping on val_loss after N epochs without improvement")
    p.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_bfloat16", "mixed_float16", "mixed"],
                   help="Keras dtype policy; auto (default) picks mixed_bfloat16 on CPUs with "
                        "AMX or AVX512-BF16, mixed_float16 on GPUs of compute capability >= 7.0, "
                        "else float32, and says which; mixed = auto. The head stays float32")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                   help="tf.distribute strategy (mirrored: all local GPUs; multiworker: TF_CONFIG)")
    p.add_argument("--progress", action="store_true", help="a progress bar even when not a tty")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--force", action="store_true", help="overwrite OUT/model.keras")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    verbose = 1 if args.progress else (0 if args.quiet else None)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                      optimizer=args.optimizer, seed=args.seed, patience=args.patience,
                      verbose=verbose, augment=args.augment, class_weight=args.class_weight,
                      head_epochs=args.head_epochs, lr_schedule=args.lr_schedule,
                      weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                      label_smoothing=args.label_smoothing)
    job = TrainJob(dataset=args.dataset, model=args.model, out=args.out, config=cfg,
                   image_size=args.image_size, train_fraction=args.train_fraction,
                   weights=args.weights, fine_tune_layers=args.fine_tune_layers,
                   precision=args.precision, strategy=args.strategy, resume=args.resume,
                   force=args.force, command=args.command_line, init=args.init)
    s = train_to_folder(job, status=status_printer(args.quiet))
    resumed = f", resumed at epoch {s['resumed_at'] + 1}" if s["resumed_at"] else ""
    where = f" -> {s['model_path']}" if "model_path" in s else " (not the chief: nothing written)"
    out(f"trained {args.model}: val_accuracy {s['final'].get('val_accuracy', float('nan')):.4f} "
        f"after {s['epochs_run']} epochs{resumed} ({s['fit_seconds']:.1f} s, "
        f"{s['precision']['used']}){where}")
    out(f"weights sha256 {s['weights_sha256']}")
    return 0
