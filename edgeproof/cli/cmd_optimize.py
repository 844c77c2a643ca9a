"""`edgeproof optimize`: the fastest export that keeps its accuracy, with a recommendation."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edgeproof.app.ladder import ladders
from edgeproof.app.optimize import OptimizeConfig, optimize
from edgeproof.cli.common import (add_dataset_args, add_gate_args, add_preprocess_option,
                                  add_target_args, out,
                                  positive_int)
from edgeproof.export.context import DEFAULT_CALIB_SIZE
from edgeproof.manifest import parse_preprocess
from edgeproof.validation import parse_list


def register(sub) -> None:
    p = sub.add_parser("optimize", help="find the fastest export that keeps its accuracy",
                       description="Export MODEL to float and integer candidates, cheapest first "
                       "in each family (TFLite int8 after the float rewrites → without bias correction → more "
                       "calibration → layers kept float → QAT → dynamic → int16x8; ONNX QDQ "
                       "MinMax → without bias correction → Entropy → Percentile → nodes kept float → "
                       "dynamic), check each on the validation split of --dataset "
                       "(calibration uses its train split), time each, and recommend the fastest "
                       "that passes the gate, with test-split numbers. Writes OUT/optimize.json, "
                       "optimize.md, pareto.png, report.html and OUT/models/. Exits 1 when nothing "
                       "passes, naming the closest candidate. --ram-budget / --flash-budget make "
                       "fitting part of the gate; --target mcu tries only full-integer TFLite "
                       "rungs, runs each on TensorFlow Lite Micro and ranks what passes and fits "
                       "by MACs, then arena + flash.")
    p.add_argument("model", metavar="MODEL",
                   help="a .keras / .h5 (tf-keras or Keras 3), a SavedModel folder or a float "
                        "ONNX file (its candidates are the onnx-* rungs; TFLite and QAT rungs "
                        "fail and the ladder goes on)")
    add_dataset_args(p, required=True)
    add_gate_args(p, note=", on the validation split, each rung judged at --confidence "
                          "corrected for every rung the ladders hold (Bonferroni)")
    p.add_argument("--val-size", type=positive_int, default=None, metavar="N",
                   help="validation images the gate decides on, drawn (stratified, seeded) "
                        "from train + validation; before the search optimize says how many "
                        "the gate needs, and stops (exit 4) when the split cannot prove the "
                        "target at all")
    add_target_args(p, "candidates (every rung)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "tensorrt"],
                   help="where ONNX candidates are timed (TFLite runs on the CPU)")
    p.add_argument("--formats", default=None,
                   help="only these formats' candidates, e.g. tflite-int8,onnx-int8")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="stop the search after N minutes and report what was tried")
    p.add_argument("--no-qat", action="store_true",
                   help="leave out quantization-aware fine-tuning (a TFLite rung by default: it "
                        "trains a few epochs, so it is the slowest rung; tf-keras models only)")
    p.add_argument("--allow-qat", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--exhaustive", action="store_true",
                   help="try every rung instead of stopping a family at its first pass")
    p.add_argument("--calib-size", type=positive_int, default=None,
                   help=f"calibration images of the first rungs (default {DEFAULT_CALIB_SIZE}, "
                        "or all of a smaller train split)")
    add_preprocess_option(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = OptimizeConfig(model=args.model, dataset=args.dataset, out=args.out,
                         max_accuracy_drop=args.max_accuracy_drop,
                         min_agreement=args.min_agreement, device=args.device,
                         formats=tuple(parse_list(args.formats)) or None,
                         budget_minutes=args.budget_minutes, allow_qat=not args.no_qat,
                         exhaustive=args.exhaustive, seed=args.seed, calib_size=args.calib_size,
                         preprocess=parse_preprocess(args.preprocess),
                         command=args.command_line, target=args.target,
                         ram_budget=args.ram_budget, flash_budget=args.flash_budget,
                         confidence=args.confidence, gate_mode=args.gate_mode,
                         val_size=args.val_size)
    total = sum(len(v) for v in ladders(cfg).values())
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=args.quiet) as bar:
        task = bar.add_task("candidates", total=total)

        def step(label: str) -> None:
            bar.update(task, description=label)
            bar.advance(task)

        result = optimize(cfg, status=lambda m: bar.console.print(f"· {m}"), progress=step)
    rec = result["recommendation"]
    out(f"recommendation: {rec['format']} on {rec['runtime']} ({rec['rung']}): {rec['why']}; test "
        f"accuracy {100 * rec['accuracy']:.2f}% ({100 * rec['accuracy_delta']:+.2f} pt), top-1 "
        f"agreement {100 * rec['top1_agreement']:.2f}% -> {args.out}/models/")
    if rec.get("test_check"):
        out(rec["test_check"]["text"])
    out(f"report: {args.out}/optimize.md, optimize.json, report.html")
    return 0
