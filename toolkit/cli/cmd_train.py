"""`edgekit train`: train a registered model on a dataset, with checkpoints and resume."""

from __future__ import annotations

import json

from toolkit.cli.common import add_dataset_args, fraction, out, positive_int, status_printer


def register(sub) -> None:
    p = sub.add_parser("train", help="train a registered model",
                       description="Train a registered model; writes OUT/model.keras (+ manifest), "
                       "OUT/history.csv, OUT/tensorboard/ and OUT/train.json. A checkpoint "
                       "(weights + optimizer) is kept every epoch: after an interrupt, rerun "
                       "with --resume.")
    add_dataset_args(p, default="digits")
    p.add_argument("--model", default="small_cnn", help="a name from `edgekit info --models`")
    p.add_argument("--weights", default="imagenet",
                   help="transfer models: imagenet | none | FILE (default imagenet)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--image-size", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", default="adam", help="adam | sgd (momentum 0.9) | rmsprop")
    p.add_argument("--augment", default=None, metavar="PRESET", help="chollet | lab8 | lab9")
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
    p.add_argument("--precision", default="float32", choices=["float32", "mixed"],
                   help="mixed = mixed_float16 compute with a float32 head (GPU)")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                   help="tf.distribute strategy (mirrored: all local GPUs; multiworker: TF_CONFIG)")
    p.add_argument("--progress", action="store_true", help="a progress bar even when not a tty")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--force", action="store_true", help="overwrite OUT/model.keras")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _model_kwargs(args) -> dict:
    from toolkit.models import model_spec

    if model_spec(args.model).family != "transfer":
        return {}
    kw = {"weights": args.weights}
    if args.fine_tune_layers:
        kw["fine_tune_layers"] = args.fine_tune_layers
    return kw


def run(args) -> int:
    from pathlib import Path

    from export.artifact import atomic_write_bytes, ensure_writable_dir, write_artifact
    from export.context import ExportContext, model_fingerprint
    from export.formats import export_model
    from toolkit.data import load_dataset, subsample
    from toolkit.distribute import precision_policy, strategy_scope
    from toolkit.errors import UsageError
    from toolkit.models import create_model
    from toolkit.tfcompat import set_seed
    from toolkit.train import TrainConfig, train_model

    say = status_printer(args.quiet)
    outdir = ensure_writable_dir(Path(args.out))
    if (outdir / "model.keras").exists() and not (args.force or args.resume):
        raise UsageError(f"{outdir / 'model.keras'} already exists; pass --force to overwrite or "
                         "--resume to continue training.")
    verbose = 1 if args.progress else (0 if args.quiet else None)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                      optimizer=args.optimizer, seed=args.seed, patience=args.patience,
                      verbose=verbose, augment=args.augment, class_weight=args.class_weight,
                      head_epochs=args.head_epochs).validate()
    say(f"loading dataset {args.dataset}")
    ds = load_dataset(args.dataset, args.image_size, args.seed)
    if args.train_fraction:
        ds.x_train, ds.y_train = subsample(ds.x_train, ds.y_train, args.train_fraction, args.seed)
        ds.provenance["train_fraction"] = args.train_fraction
    set_seed(args.seed, deterministic=args.strategy == "default")
    with precision_policy(args.precision), strategy_scope(args.strategy):
        model = create_model(args.model, ds.num_classes, ds.input_shape, **_model_kwargs(args))
        say(f"training {args.model} ({model.count_params():,} params) on {ds.split_sizes}")
        result = train_model(model, ds, cfg, workdir=outdir, resume=args.resume)
    ctx = ExportContext(ds.class_names, ds.preprocessing,
                        source={"model_name": args.model, "sha256": model_fingerprint(model),
                                "dataset": ds.name})
    path = write_artifact(export_model(model, "keras", ctx), outdir, "model", force=True)
    summary = {"command": args.command_line, "model": args.model,
               "dataset": ds.summary(), "epochs_run": result.epochs_run,
               "seconds": round(result.seconds, 2), "config": result.config,
               "precision": args.precision, "strategy": args.strategy,
               "final": {k: v[-1] for k, v in result.history.items()}, "model_path": str(path)}
    atomic_write_bytes(outdir / "train.json", json.dumps(summary, indent=2).encode())
    fin = summary["final"]
    resumed = f", resumed at epoch {result.resumed_at + 1}" if result.resumed_at else ""
    out(f"trained {args.model}: val_accuracy {fin.get('val_accuracy', float('nan')):.4f} after "
        f"{result.epochs_run} epochs{resumed} ({result.seconds:.1f} s) -> {path}")
    return 0
