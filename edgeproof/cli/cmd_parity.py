"""`edgeproof parity`: does CANDIDATE answer like REFERENCE? Exit 1 when the gate fails."""

from __future__ import annotations

import json

from edgeproof.bench.one_artifact import evaluation_split
from edgeproof.bench.derive import artifact_manifest
from edgeproof.bench.gate import DEFAULT_MIN_AGREEMENT, Gate
from edgeproof.bench.suite import parity_check
from edgeproof.cli.common import (add_dataset_args, add_preprocess_option, fraction, out,
                                  points, positive_int)
from edgeproof.errors import GateFailed
from edgeproof.manifest import parse_preprocess


def register(sub) -> None:
    p = sub.add_parser("parity", help="compare a candidate artifact with its reference",
                       description="Run REFERENCE and CANDIDATE on the same test images (each "
                       "preprocessed from its own manifest) and report top-1 agreement, accuracy "
                       "delta overall and per class, max/mean |Δp| and KL divergence. Exits 1 when "
                       "the gate fails. REFERENCE may be a .keras / .h5 of tf-keras or Keras 3, a "
                       "SavedModel folder, a float ONNX file (NCHW PyTorch files are transposed, "
                       "logits softmaxed) or any artifact.")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("candidate", metavar="CANDIDATE")
    add_dataset_args(p, required=True)
    p.add_argument("--min-agreement", type=fraction, default=DEFAULT_MIN_AGREEMENT,
                   help=f"minimum top-1 agreement (default {DEFAULT_MIN_AGREEMENT:g})")
    p.add_argument("--max-accuracy-drop", type=points, default=None,
                   help="maximum accuracy drop in percentage points (0.5 = half a point; "
                        "default: not checked)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use N test images (a seeded random sample of the split)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_preprocess_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    preprocess = parse_preprocess(args.preprocess)
    ds, x, y = evaluation_split(args.dataset, artifact_manifest(args.reference, preprocess),
                                args.seed, args.limit)
    result = parity_check(args.reference, args.candidate, x, y,
                          Gate(args.min_agreement, args.max_accuracy_drop), preprocess)
    fails = result["gate"]["failures"]
    if args.json:
        out(json.dumps(result, indent=2))
    else:
        out(f"images: {len(y)} ({ds.name} test split)")
        out(f"accuracy: reference {result['reference_accuracy']:.4f}, candidate "
            f"{result['accuracy']:.4f} (delta {100 * result['accuracy_delta']:+.2f} pt)")
        out(f"top-1 agreement: {result['top1_agreement']:.4f}")
        out(f"max |Δp|: {result['max_abs_diff']:.3e}, mean |Δp|: {result['mean_abs_diff']:.3e}, "
            f"KL: {result['kl_divergence']:.3e}")
        worst = sorted((d, ds.class_names[i]) for i, d in enumerate(result["per_class_accuracy_delta"])
                       if d is not None)[:3]
        out("worst classes: " + ", ".join(f"{n} {100 * d:+.1f} pt" for d, n in worst))
        out("gate: " + ("passed" if not fails else "FAILED (" + "; ".join(fails) + ")"))
    if fails:
        raise GateFailed("Parity gate failed: " + "; ".join(fails))
    return 0
