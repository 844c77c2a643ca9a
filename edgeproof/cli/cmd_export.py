"""`edgeproof export`: any trained model (tf-keras, Keras 3, SavedModel, ONNX) -> edge formats,
each verified against it."""

from __future__ import annotations

import sys

from edgeproof.app.export_and_check import ExportConfig, export_and_check
from edgeproof.bench.table import print_table
from edgeproof.cli.common import (add_gate_args, add_preprocess_option, nonneg_int, out,
                                  parse_options, positive_int,
                                  status_printer)
from edgeproof.export.context import DEFAULT_CALIB_SIZE
from edgeproof.manifest import parse_preprocess
from edgeproof.validation import parse_list


def register(sub) -> None:
    p = sub.add_parser("export", help="convert a model to edge formats",
                       description="Convert MODEL (a .keras or .h5 file written by tf-keras 2 or "
                       "Keras 3, a SavedModel folder, or a float ONNX file such as PyTorch "
                       "writes) to each --format, writing <out>/<name>-<format><suffix> and its manifest "
                       "<...>.json atomically. With --calib, int8 formats calibrate on images "
                       "from its train split and every export is checked against MODEL on its "
                       "test split. Keras 3, SavedModel and ONNX models convert as they are; an "
                       "ONNX model makes onnx-* formats only, and tflite-qat-int8 needs a tf-keras "
                       "model.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--format", required=True, help="comma-separated formats (edgeproof formats)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--calib", "--dataset", dest="calib", metavar="DATA", default=None,
                   help="the dataset whose train split calibrates int8 and whose test split "
                        "verifies every export (digits, mnist, cifar10, flowers, a folder or an "
                        ".npz)")
    p.add_argument("--calib-size", type=positive_int, default=None,
                   help=f"calibration images (default {DEFAULT_CALIB_SIZE}, or all of a smaller "
                        "train split)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the dataset split")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="format option, e.g. io_type=uint8 or opset=13 (repeatable)")
    p.add_argument("--class-names", default=None, help="comma-separated class names")
    add_preprocess_option(p)
    p.add_argument("--name", default=None, help="artifact base name (default: MODEL's stem)")
    add_gate_args(p, None, None,
                  note=". With --calib: exit 1 when an export fails the gate against MODEL, 4 "
                       "when its test split cannot decide")
    p.add_argument("--debug-quant", action="store_true",
                   help="for int8 formats that support it (tflite-int8), write the per-layer "
                   "quantization error as <artifact>.quant-debug.csv/.png (needs --calib)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the check rows (plus export_seconds per format) as JSON")
    p.add_argument("--compare", action="append", metavar="FILE",
                   help="an export of your own (an .onnx torch.onnx.export wrote, a .tflite, ...) "
                        "checked against MODEL like edgeproof's; repeatable")
    p.add_argument("--force", action="store_true", help="overwrite existing artifacts")
    p.add_argument("--unsafe", action="store_true", help="allow Lambda layers (trusted files only)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = ExportConfig(
        model=args.model, formats=parse_list(args.format), out=args.out, calib=args.calib,
        calib_size=args.calib_size, seed=args.seed, options=parse_options(args.option),
        class_names=parse_list(args.class_names) or None,
        preprocess=parse_preprocess(args.preprocess),
        name=args.name, min_agreement=args.min_agreement,
        max_accuracy_drop=args.max_accuracy_drop, confidence=args.confidence,
        gate_mode=args.gate_mode, debug_quant=args.debug_quant,
        json=args.json, force=args.force, unsafe=args.unsafe, compare=args.compare or [])
    result = export_and_check(cfg, status=status_printer(args.quiet))
    for o in result.outcomes:
        out(f"wrote {o.path} ({o.artifact.manifest.size_bytes:,} bytes, {o.seconds:.1f} s)"
            if o.path else f"failed {o.format}: {o.error}")
    if result.preprocessing:
        out(f"preprocessing: {result.preprocessing}")
    for note in result.notes + result.debug_errors:
        out(note)
    for path in result.debug_files:
        out(f"wrote {path}")
    if result.rows:
        print_table(result.rows, title="exports vs source model (test split)")
    for warning in result.warnings:
        print(f"edgeproof: {warning}", file=sys.stderr)
    failure = result.failure(cfg.gate)
    if failure is not None:
        raise failure
    return 0
