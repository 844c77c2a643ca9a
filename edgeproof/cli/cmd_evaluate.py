"""`edgeproof evaluate`: classification report, confusion matrix, curves, worst images."""

from __future__ import annotations

from pathlib import Path

from edgeproof.app.evaluate_job import evaluate_to_folder
from edgeproof.cli.common import (add_dataset_args, add_preprocess_option, nonneg_int, out,
                                  positive_int, status_printer)
from edgeproof.manifest import parse_preprocess


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained model on a test split",
                       description="Evaluate MODEL on the test split of --dataset (same seed, "
                       "same split as training): writes classification_report.txt, "
                       "confusion_matrix.png, curves.png (from history.csv beside MODEL), "
                       "worst.png + worst.md, Grad-CAM overlays of the worst images (gradcam/) and "
                       "metrics.json into --out.")
    p.add_argument("model", help="a .keras / .h5 (tf-keras or Keras 3; `edgeproof train` writes "
                                  "one), a SavedModel folder or a float ONNX file")
    add_dataset_args(p, required=True)
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="default: the model's input size")
    p.add_argument("--history", default=None, help="history.csv (default: beside MODEL)")
    p.add_argument("--worst", type=positive_int, default=10, help="worst images to show (10)")
    p.add_argument("--gradcam", type=nonneg_int, default=3,
                   help="Grad-CAM overlays of the N worst images, for their true class (3; 0: none)")
    p.add_argument("--split", default="test", choices=["test", "val"])
    add_preprocess_option(p)
    p.add_argument("--out", default=None, help="output folder (default: MODEL's folder/eval)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    say = status_printer(args.quiet)
    say(f"evaluating {args.model} on {args.dataset}")
    report = evaluate_to_folder(args.model, args.dataset, args.out, seed=args.seed,
                                image_size=args.image_size, history_csv=args.history,
                                worst=args.worst, split=args.split, explain=args.gradcam,
                                preprocess=parse_preprocess(args.preprocess))
    out(Path(report["files"]["classification_report"]).read_text())
    if report.get("gradcam_skipped"):
        say(f"no Grad-CAM: {report['gradcam_skipped']}")
    out(f"{args.split} accuracy {report['accuracy']:.4f} on {report['n']} images -> "
        f"{Path(report['files']['classification_report']).parent}")
    return 0
