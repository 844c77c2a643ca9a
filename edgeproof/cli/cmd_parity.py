"""`edgeproof parity`: does CANDIDATE answer like REFERENCE? Exit 1 when the gate fails,
4 when it cannot decide."""

from __future__ import annotations

import json

from edgeproof.bench.one_artifact import evaluation_split
from edgeproof.bench.derive import artifact_manifest
from edgeproof.bench.gate import DEFAULT_MIN_AGREEMENT
from edgeproof.bench.suite import parity_check
from edgeproof.cli.common import (add_dataset_args, add_gate_args, add_preprocess_option, gate_of,
                                  out, positive_int)
from edgeproof.errors import GateFailed, GateUndecided
from edgeproof.manifest import parse_preprocess


def register(sub) -> None:
    p = sub.add_parser("parity", help="compare a candidate artifact with its reference",
                       description="Run REFERENCE and CANDIDATE on the same test images (each "
                       "preprocessed from its own manifest) and report top-1 agreement, accuracy "
                       "delta overall and per class, max/mean |Δp| and KL divergence, with the "
                       "agreement's and the accuracy drop's confidence bounds. Exits 1 when the "
                       "gate fails and 4 when it cannot decide (the bounds straddle a limit: "
                       "more images decide it). REFERENCE may be a .keras / .h5 of tf-keras or Keras 3, a "
                       "SavedModel folder, a float ONNX file (NCHW PyTorch files are transposed, "
                       "logits softmaxed) or any artifact.")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("candidate", metavar="CANDIDATE")
    add_dataset_args(p, required=True)
    add_gate_args(p, DEFAULT_MIN_AGREEMENT, None)
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
                          gate_of(args), preprocess)
    gate = result["gate"]
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
        out(_bounds_line(gate["verdict"]))
        out("gate: " + {"passes": "passed", "fails": "FAILED", "undecided": "UNDECIDED"}[
            gate["answer"]] + (f" ({'; '.join(gate['failures'] + gate['undecided'])})"
                               if gate["answer"] != "passes" else ""))
    if gate["answer"] == "fails":
        raise GateFailed("Parity gate failed: " + "; ".join(gate["failures"]))
    if gate["answer"] == "undecided":
        raise GateUndecided("Parity gate undecided: " + "; ".join(gate["undecided"]))
    return 0


def _bounds_line(v: dict) -> str:
    """What the gate stood on: the agreement's and the drop's one-sided bounds."""
    if v.get("agreement_low") is None:
        return "bounds: none (decided on the measured figures)"
    line = (f"bounds ({100 * v['level']:.4g}% each, {v['n']:,} images): top-1 agreement >= "
            f"{100 * v['agreement_low']:.2f}%, <= {100 * v['agreement_high']:.2f}%")
    if v.get("drop_high") is not None:
        line += (f"; accuracy drop between {100 * v['drop_low']:+.2f} and "
                 f"{100 * v['drop_high']:+.2f} pt")
    return line + (" (not used: --gate point)" if v.get("basis") == "point" else "")
