"""`edgeproof bench`: accuracy, parity and latency of artifacts on their runtimes."""

from __future__ import annotations

import argparse

from edgeproof.app.bench import BenchConfig, run_bench
from edgeproof.bench.gate import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT
from edgeproof.bench.measure import Measurement
from edgeproof.bench.runtimes import RUNTIMES, runtime_names
from edgeproof.bench.settings import BenchSettings
from edgeproof.cli.common import (add_dataset_args, add_gate_args, add_preprocess_option,
                                  int_list, out, parse_options, positive_int, print_results,
                                  status_printer, threads_arg)
from edgeproof.errors import GateFailed, GateUndecided
from edgeproof.manifest import parse_preprocess

DEFAULTS = Measurement()

EPILOG = """examples:
  edgeproof bench m.tflite m.onnx --batch-sizes 1,8,32 --out runs/bench
  edgeproof bench m-int8.tflite --dataset ../photos --reference m.keras --min-agreement 0.98
  edgeproof bench m.onnx --device cuda              # error when CUDA is not what runs
  edgeproof bench m.tflite --runtime-option xnnpack=false   # LiteRT builtin kernels only
  edgeproof bench m.tflite --bare-loop --threads 2  # edgeproof p50 vs a bare invoke() loop
  edgeproof bench m-int8.tflite m.onnx --dataset D --on local --on ssh://pi@raspberrypi
  edgeproof bench m.onnx --repeat 3                 # 3 fresh processes, interleaved
"""


def _options_help() -> str:
    return "; ".join(f"{cls.name}: " + ", ".join(o.describe(k) for k, o in cls.OPTIONS.items())
                     for cls in RUNTIMES.rows() if cls.OPTIONS)


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure artifacts: accuracy, parity, latency",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Benchmark each ARTIFACT on its runtime (by suffix, or "
                       "--runtime). With --dataset: accuracy on its test split, and parity "
                       "against --reference. Without: latency on synthetic inputs of the "
                       "artifact's shape. One row per artifact and batch size.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    add_dataset_args(p)
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="reference for parity: the model the artifacts came from (.keras / .h5 "
                        "of tf-keras or Keras 3, a SavedModel folder, a float ONNX file such as "
                        "PyTorch writes) or any artifact")
    p.add_argument("--runtime", default=None, choices=runtime_names(), help="default: by suffix")
    p.add_argument("--device", default="cpu", help="cpu | gpu | cuda | tensorrt")
    p.add_argument("--allow-fallback", action="store_true",
                   help="accept a runtime that fell back to CPU (the row says what ran)")
    p.add_argument("--threads", type=threads_arg, default="auto",
                   help="auto (default: a short sweep per artifact picks the fastest count; the row records it), default (each runtime's own) or N")
    add_preprocess_option(p)
    p.add_argument("--runtime-option", action="append", metavar="KEY=VALUE",
                   help=f"runtime option (repeatable) — {_options_help()}")
    _timing_args(p)
    _gate_and_output_args(p)
    p.set_defaults(func=run)


def _timing_args(p) -> None:
    """How long and how often each artifact is timed, and where."""
    p.add_argument("--batch-sizes", type=int_list, default=[1], help="e.g. 1,8,32 (default 1)")
    p.add_argument("--min-runs", type=positive_int, default=DEFAULTS.min_runs)
    p.add_argument("--min-seconds", type=float, default=DEFAULTS.min_seconds)
    p.add_argument("--warmup-runs", type=positive_int, default=DEFAULTS.warmup_runs)
    p.add_argument("--warmup-seconds", type=float, default=DEFAULTS.warmup_seconds)
    p.add_argument("--bare-loop", action="store_true",
                   help="also time a bare invoke()/session.run() loop; report edgeproof/bare p50")
    p.add_argument("--on", action="append", default=[], metavar="TARGET",
                   help="where to measure (repeatable): local, or ssh://[user@]host[:port]"
                        "[/absolute/path/to/python] (host may be an alias of your ssh config; "
                        "the device needs Python, numpy and ai-edge-litert/tflite-runtime or "
                        "onnxruntime, nothing else). Rows then name their device")
    p.add_argument("--ssh-config", default=None, metavar="FILE",
                   help="an OpenSSH config file for the ssh targets (ssh -F FILE)")
    p.add_argument("--repeat", type=positive_int, default=1,
                   help="measure each artifact N times, interleaved (A B C A B C), each in a "
                        "fresh process; rows report the spread between processes")
    p.add_argument("--in-process", action="store_true",
                   help="measure every artifact in this process instead of a fresh worker process "
                        "each (faster to start, but runtimes disturb each other: TensorFlow's "
                        "thread pools slow LiteRT measured after it)")


def _gate_and_output_args(p) -> None:
    """The pass/fail gate, the test-split sample and what is written."""
    add_gate_args(p, None, None,
                  note=". With --reference: exit 1 when an export fails the gate, 4 when it "
                       "cannot decide. Given alone, accuracy is not checked; with neither "
                       f"limit the recommendation uses {DEFAULT_MIN_AGREEMENT:g} and "
                       f"{100 * DEFAULT_MAX_ACCURACY_DROP:g} pt and the exit code ignores it")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use N test images (a seeded random sample of the split)")
    p.add_argument("--json", default=None, metavar="PATH", help="write a report.json-shaped file")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write report.json, report.md and plots (latency, pareto, throughput)")
    p.add_argument("--quiet", action="store_true")


def run(args) -> int:
    settings = BenchSettings(
        runtime=args.runtime, device=args.device, allow_fallback=args.allow_fallback,
        threads=args.threads, runtime_options=parse_options(args.runtime_option),
        batch_sizes=tuple(args.batch_sizes), preprocess=parse_preprocess(args.preprocess),
        measurement=Measurement(min_runs=args.min_runs, min_seconds=args.min_seconds,
                                warmup_runs=args.warmup_runs,
                                warmup_seconds=args.warmup_seconds),
        bare_loop=args.bare_loop)
    cfg = BenchConfig(
        artifacts=args.artifacts, dataset=args.dataset, seed=args.seed, limit=args.limit,
        reference=args.reference, settings=settings, min_agreement=args.min_agreement,
        max_accuracy_drop=args.max_accuracy_drop, confidence=args.confidence,
        gate_mode=args.gate_mode, in_process=args.in_process, on=args.on,
        repeat=args.repeat, ssh_config=args.ssh_config, out=args.out,
        json=args.json, command=args.command_line, quiet=args.quiet)
    report, written = run_bench(cfg, status=status_printer(args.quiet))
    print_results(report, "edgeproof bench")
    if written:
        out("wrote " + ", ".join(written))
    for r in report["results"]:
        if r["status"] != "ok":
            out(f"failed {r['artifact']} (batch {r['batch_size']}): {r['error']}")
    gate = report.get("gate")
    if gate and gate["enforced"] and gate.get("failures"):
        raise GateFailed("Parity gate failed: " + "; ".join(gate["failures"]))
    if gate and gate["enforced"] and gate.get("undecided"):
        raise GateUndecided("Parity gate undecided: " + "; ".join(gate["undecided"]))
    return 0 if all(r["status"] == "ok" for r in report["results"]) else 1
