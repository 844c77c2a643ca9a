"""`edgekit evaluate`: classification report, confusion matrix, curves, worst images."""

from __future__ import annotations

from toolkit.cli.common import add_dataset_args, nonneg_int, out, positive_int, status_printer


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained Keras model on a test split",
                       description="Evaluate MODEL on the test split of --dataset (same seed, "
                       "same split as training): writes classification_report.txt, "
                       "confusion_matrix.png, curves.png (from history.csv beside MODEL), "
                       "worst.png + worst.md, Grad-CAM overlays of the worst images (gradcam/) and "
                       "metrics.json into --out.")
    p.add_argument("model", help="a .keras model (from `edgekit train`)")
    add_dataset_args(p, required=True)
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="default: the model's input size")
    p.add_argument("--history", default=None, help="history.csv (default: beside MODEL)")
    p.add_argument("--worst", type=positive_int, default=10, help="worst images to show (10)")
    p.add_argument("--gradcam", type=nonneg_int, default=3,
                   help="Grad-CAM overlays of the N worst images, for their true class (3; 0: none)")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--out", default=None, help="output folder (default: MODEL's folder/eval)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from toolkit.data import load_dataset
    from toolkit.errors import DataError
    from export.keras_export import load_keras_model
    from toolkit.evaluate import evaluate_model

    say = status_printer(args.quiet)
    model_path = Path(args.model)
    model = load_keras_model(model_path)
    size = args.image_size or int(model.inputs[0].shape[1])
    say(f"loading dataset {args.dataset} at {size}x{size}")
    ds = load_dataset(args.dataset, size, args.seed)
    if ds.input_shape[-1] != int(model.inputs[0].shape[-1]):
        raise DataError(f"{args.dataset} has {ds.input_shape[-1]} channel(s) but the model takes "
                        f"{int(model.inputs[0].shape[-1])}; evaluate on the training dataset.")
    history = args.history or model_path.parent / "history.csv"
    outdir = Path(args.out) if args.out else model_path.parent / "eval"
    report = evaluate_model(model, ds, outdir, history, args.worst, args.split,
                            explain=args.gradcam)
    out(Path(report["files"]["classification_report"]).read_text())
    if report.get("gradcam_skipped"):
        say(f"no Grad-CAM: {report['gradcam_skipped']}")
    out(f"{args.split} accuracy {report['accuracy']:.4f} on {report['n']} images -> {outdir}")
    return 0
