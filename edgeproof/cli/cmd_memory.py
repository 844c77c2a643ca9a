"""`edgeproof memory`: flash, arena and the peak of .tflite artifacts on a microcontroller."""

from __future__ import annotations

import argparse

from edgeproof.app.memory_report import MemoryConfig, run_memory
from edgeproof.bench.footprint import firmware_line, table_rows
from edgeproof.cli.common import out, print_rows

EPILOG = """examples:
  edgeproof memory models/m-tflite-int8.tflite
  edgeproof memory exports/*.tflite --json memory.json
  edgeproof memory m-int8.tflite --write-manifest   # add micro: {arena_bytes, ...} to m-int8.tflite.json
"""


def register(sub) -> None:
    p = sub.add_parser("memory", help="flash and RAM of .tflite files on a microcontroller",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="For each ARTIFACT (.tflite): flash (the file, embedded "
                       "manifest included), the tensor arena, the op where the most bytes are "
                       "live and the largest tensors there, MACs, and the ops with whether TFLM "
                       "has a kernel for each. The arena is measured on TensorFlow Lite Micro "
                       "(the smallest that works, in a sandbox process) where TFLM runs the "
                       "file, else computed from tensor lifetimes (a lower bound) and labelled "
                       "'computed'.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--write-manifest", action="store_true",
                   help="record a measured arena in each artifact's sidecar manifest "
                        "(<artifact>.json: micro = {arena_bytes, flash_bytes, ops, ...}); the "
                        "artifact's bytes and sha256 do not change")
    p.add_argument("--computed-only", action="store_true",
                   help="do not run TFLM: computed arenas only")
    p.set_defaults(func=run)


def run(args) -> int:
    report = run_memory(MemoryConfig(args.artifacts, json=args.json,
                                     write_manifest=args.write_manifest,
                                     measure=not args.computed_only,
                                     command=args.command_line))
    headers, rows = table_rows(report.entries)
    print_rows(f"edgeproof memory — TFLM {report.tflite_micro or 'not installed'}", headers,
               rows)
    out("arena: measured = the smallest tensor arena TFLM builds with (reference kernels; "
        "optimized kernels such as CMSIS-NN may ask for more scratch); computed = planned "
        "from tensor lifetimes, a lower bound. flash: the .tflite file, embedded manifest "
        "('manifest') included.")
    for entry in report.entries:
        if entry.ok:
            out(firmware_line(entry))
        if entry.manifest:
            out(f"recorded in {entry.manifest}")
        if entry.manifest_error:
            out(f"not recorded: {entry.manifest_error}")
    if args.json:
        out(f"wrote {args.json}")
    return 1 if report.failed else 0
