"""`edgeproof explain`: Grad-CAM heatmap overlays for images."""

from __future__ import annotations

from edgeproof.cli.common import out, status_printer
from edgeproof.toolkit.gradcam import explain_files


def register(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM heatmaps: where the model looked",
                       description="Write a Grad-CAM overlay per IMAGE into --out, at the last "
                       "convolutional layer (found automatically, also inside transfer bases).")
    p.add_argument("model", help="a .keras / .h5 model of tf-keras or Keras 3 (Grad-CAM needs "
                                  "its layers: a SavedModel or ONNX file is refused)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--class-index", type=int, default=None,
                   help="explain this class (default: the predicted one)")
    p.add_argument("--out", default="explain", help="output folder (default ./explain)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    say = status_printer(args.quiet)
    say(f"Grad-CAM of {len(args.images)} image(s) with {args.model}")
    result = explain_files(args.model, args.images, args.out, args.class_index)
    say(f"Grad-CAM at layer {result['layer']}")
    for r in result["images"]:
        out(f"{r['image']}: {r['class']} ({r['probability']:.3f}) -> {r['overlay']}")
    return 0
