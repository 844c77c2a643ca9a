"""`edgekit explain`: Grad-CAM heatmap overlays for images."""

from __future__ import annotations

from toolkit.cli.common import out, status_printer


def register(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM heatmaps: where the model looked",
                       description="Write a Grad-CAM overlay per IMAGE into --out, at the last "
                       "convolutional layer (found automatically, also inside transfer bases).")
    p.add_argument("model", help="a .keras model (from `edgekit train`)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--class-index", type=int, default=None,
                   help="explain this class (default: the predicted one)")
    p.add_argument("--out", default="explain", help="output folder (default ./explain)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _preprocessing(model, model_path):
    from export.manifest import Preprocessing, manifest_path

    side = manifest_path(model_path)
    if side.exists():
        from export.manifest import Manifest

        m = Manifest.load(side)
        return m.preprocessing, list(m.class_names)
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    n = int(model.outputs[0].shape[-1])
    return Preprocessing(size=[h, w], color="grayscale" if c == 1 else "rgb"), \
        [str(i) for i in range(n)]


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from bench.preprocess import decode_image, to_float
    from export.keras_export import load_keras_model
    from toolkit.gradcam import find_last_conv, gradcam, save_overlay

    say = status_printer(args.quiet)
    model = load_keras_model(args.model)
    pre, names = _preprocessing(model, args.model)
    path = find_last_conv(model)
    say(f"Grad-CAM at layer {'/'.join(path)}")
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    images = np.stack([decode_image(f, pre) for f in args.images])
    heat, probs = gradcam(model, to_float(images, pre), args.class_index, path)
    for f, img, hm, p in zip(args.images, images, heat, probs):
        cls = args.class_index if args.class_index is not None else int(p.argmax())
        dest = outdir / f"{Path(f).stem}-gradcam.png"
        save_overlay(img, hm, dest, title=f"{Path(f).name}: {names[cls]} p={p[cls]:.2f}")
        out(f"{f}: {names[cls]} ({p[cls]:.3f}) -> {dest}")
    return 0
