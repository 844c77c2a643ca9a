"""`edgeproof triage REFERENCE ARTIFACT`: the tensor where an int8 artifact loses the float
model's answers, and why."""

from __future__ import annotations

import argparse

from edgeproof.app.triage import DEFAULT_IMAGES, DEFAULT_THRESHOLD_DB, TriageConfig, triage
from edgeproof.cli.common import (add_dataset_args, add_preprocess_option, out, positive_int,
                                  print_rows)
from edgeproof.manifest import parse_preprocess

COLUMNS = ["#", "tensor", "layer", "op", "SQNR dB", "cosine", "clipped %", "levels %",
           "outlier x"]
EPILOG = """examples:
  edgeproof triage model.keras exports/model-tflite-int8.tflite --dataset digits
  edgeproof triage model.keras exports/model-onnx-int8.onnx --dataset ../photos --json t.json
"""


def register(sub) -> None:
    p = sub.add_parser("triage", help="where an int8 artifact loses the float model's answers",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Run REFERENCE (float, any kind) and ARTIFACT (an integer "
                       ".tflite or .onnx exported from it) on the same validation images and "
                       "compare every intermediate tensor they share: SQNR and cosine per "
                       "tensor, the first tensor below --threshold and the layer that made it, "
                       "and a cause read from evidence (outlier-dominated activation range, "
                       "per-tensor weight scale over unequal channels, unfolded BatchNorm, "
                       "input scale wasting range, output saturation).")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("artifact", metavar="ARTIFACT")
    add_dataset_args(p, required=True)
    add_preprocess_option(p)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_DB, metavar="DB",
                   help=f"SQNR (dB) below which a tensor counts as diverged "
                        f"(default {DEFAULT_THRESHOLD_DB:g})")
    p.add_argument("--images", type=positive_int, default=DEFAULT_IMAGES, metavar="N",
                   help=f"validation images to run (default {DEFAULT_IMAGES})")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="also write the result as JSON (keys first_diverging_tensor, layer, "
                        "causes, tensors)")
    p.set_defaults(func=run)


def _num(v, fmt: str) -> str:
    return "-" if v is None or v != v else format(v, fmt)


def _bars(hist: dict, width: int = 30) -> list[str]:
    top = max(hist["counts"]) or 1
    edges = hist["edges"]
    return [f"  {edges[i]:>10.3g} .. {edges[i + 1]:<10.3g} {'#' * round(width * c / top)} {c}"
            for i, c in enumerate(hist["counts"])]


def run(args) -> int:
    r = triage(TriageConfig(args.reference, args.artifact, args.dataset,
                            parse_preprocess(args.preprocess), args.images, args.threshold,
                            args.seed, args.json))
    c = r.comparison
    rows = [[str(t.index), t.name, t.producer, t.producer_type, _num(t.sqnr_db, ".1f"),
             _num(t.cosine, ".4f"), _num(100 * t.clipped_share, ".2f"),
             _num(100 * t.levels_used, ".1f"), _num(t.outlier_ratio, ".1f")]
            for t in c.tensors]
    print_rows(f"edgeproof triage — {c.kind}, {c.images} images, float side: {r.float_side}",
               COLUMNS, rows)
    out(f"top-1 agreement on these images: {100 * c.agreement:.2f}%")
    first = r.first_diverging
    out(f"first tensor below {r.threshold_db:g} dB: " +
        (f"{first.name} (layer {first.producer}, {first.sqnr_db:.1f} dB)" if first else "none"))
    for cause in r.causes:
        out(f"cause [{cause.kind}] {cause.layer} ({cause.tensor}): {cause.evidence}")
        if cause.histogram:
            out("\n".join(_bars(cause.histogram)))
    if c.unmatched:
        out(f"{len(c.unmatched)} integer tensors had no float counterpart")
    if args.json:
        out(f"wrote {args.json}")
    return 0
