"""`edgeproof predict`: classify image files with any artifact, preprocessing from its manifest."""

from __future__ import annotations

import json
import sys

from edgeproof.bench.predict import predict_files
from edgeproof.bench.runtimes import runtime_names
from edgeproof.cli.common import add_preprocess_option, out, positive_int
from edgeproof.manifest import parse_preprocess


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images with an artifact",
                       description="Print the top class and probability for each image (files or "
                       "folders, searched recursively), with preprocessing from the artifact's "
                       "manifest. Unreadable images are reported and skipped (exit 1).")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER")
    p.add_argument("--runtime", default=None, choices=runtime_names(), help="default: by suffix")
    p.add_argument("--top-k", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--unsafe", action="store_true", help="allow Lambda layers in .keras files")
    add_preprocess_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    bad = 0
    options = {"unsafe": True} if args.unsafe else {}
    for rec in predict_files(args.artifact, args.images, args.runtime, args.top_k,
                             args.batch_size, options, parse_preprocess(args.preprocess)):
        if "error" in rec:
            bad += 1
            print(f"edgeproof: skipped: {rec['error']}", file=sys.stderr)
        elif args.json:
            out(json.dumps(rec))
        else:
            out(f"{rec['image']}\t" + "\t".join(f"{p['class']} {p['probability']:.4f}"
                                                 for p in rec["predictions"]))
    return 1 if bad else 0
