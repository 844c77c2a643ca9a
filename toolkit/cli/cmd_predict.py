"""`edgekit predict`: classify image files with any artifact, preprocessing from its manifest."""

from __future__ import annotations

import json

from toolkit.cli.common import out, positive_int


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images with an artifact",
                       description="Print the top class and probability for each image (files or "
                       "folders, searched recursively), with preprocessing from the artifact's "
                       "manifest. Unreadable images are reported and skipped (exit 1).")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER")
    p.add_argument("--runtime", default=None)
    p.add_argument("--top-k", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--unsafe", action="store_true", help="allow Lambda layers in .keras files")
    p.set_defaults(func=run)


def collect_images(paths) -> list:
    from pathlib import Path

    from bench.preprocess import IMAGE_SUFFIXES
    from toolkit.errors import DataError

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.exists():
            files.append(p)
        else:
            raise DataError(f"Image not found: {p}")
    if not files:
        raise DataError(f"No images ({', '.join(IMAGE_SUFFIXES)}) under {', '.join(map(str, paths))}.")
    return files


def run(args) -> int:
    import sys

    import numpy as np

    from bench.preprocess import decode_image
    from bench.runtimes import open_runtime
    from export.manifest import find_manifest
    from toolkit.errors import DataError

    manifest = find_manifest(args.artifact)
    kw = {"unsafe": True} if args.unsafe else {}
    rt = open_runtime(args.artifact, args.runtime, manifest=manifest, **kw)
    files, bad = collect_images(args.images), 0
    names = manifest.class_names
    with rt:
        for i in range(0, len(files), args.batch_size):
            batch, ok = [], []
            for f in files[i:i + args.batch_size]:
                try:
                    batch.append(decode_image(f, manifest.preprocessing))
                    ok.append(f)
                except DataError as e:
                    bad += 1
                    print(f"edgekit: skipped: {e}", file=sys.stderr)
            if not batch:
                continue
            probs = rt.predict_images(np.stack(batch), batch_size=len(batch))
            for f, p in zip(ok, probs):
                top = np.argsort(-p)[:args.top_k]
                if args.json:
                    out(json.dumps({"image": str(f), "predictions": [
                        {"class": names[j], "index": int(j), "probability": round(float(p[j]), 6)}
                        for j in top]}))
                else:
                    out(f"{f}\t" + "\t".join(f"{names[j]} {p[j]:.4f}" for j in top))
    return 1 if bad else 0
