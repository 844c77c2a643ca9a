"""`edgeproof info FILE`: what a model file really is, read without running it."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.app.file_info import TENSOR_COLUMNS, summary_rows, tensor_rows
from edgeproof.app.file_kinds import READERS, describe_file
from edgeproof.cli.common import out, print_rows

WIDTH = 100  # the console view fits 100 columns
EPILOG = """examples:
  edgeproof info exports/model-tflite-int8.tflite   # quantization, XNNPACK partitions, manifest
  edgeproof info resnet18.onnx --json resnet18-info.json
  edgeproof info my_savedmodel/
"""


def register(sub) -> None:
    kinds = ", ".join(r.label for r in READERS.rows())
    p = sub.add_parser("info", help="what a model file is: inputs, quantization, ops, manifest",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Read FILE without running it and say what it is: format "
                       "and producer; inputs and outputs (shape with dynamic axes marked ?, "
                       "dtype, layout, quantization scale and zero-point); full-integer, "
                       "dynamic-range, float16 or float; the preprocessing it expects (from its "
                       "manifest, else what its graph shows, and which); class names; what "
                       "was kept float and why; its ops; for .tflite the XNNPACK partitions and "
                       "the ops left out (loaded, not run); size, sha256, and whether its "
                       f"manifest matches. Kinds: {kinds}.")
    p.add_argument("file", metavar="FILE", help="a model file or SavedModel folder")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="also write the same content as JSON (keys in README, 'edgeproof info')")
    p.set_defaults(func=run)


def run(args) -> int:
    info = describe_file(args.file, args.json)
    print_rows(f"edgeproof info — {Path(args.file).name}", ["what", "value"], summary_rows(info),
               max_width=WIDTH)
    print_rows("inputs and outputs", TENSOR_COLUMNS, tensor_rows(info), max_width=WIDTH)
    if args.json:
        out(f"wrote {args.json}")
    return 0
