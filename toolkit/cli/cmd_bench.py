"""`edgekit bench`: accuracy, parity and latency of artifacts on their runtimes."""

from __future__ import annotations

from toolkit.cli.common import add_dataset_args, fraction, out, positive_int, status_printer

EPILOG = """examples:
  edgekit bench m.tflite m.onnx --batch-sizes 1,8,32 --out runs/bench
  edgekit bench m-int8.tflite --dataset ../photos --reference m.keras --min-agreement 0.98
  edgekit bench m.onnx --device cuda              # error when CUDA is not what runs
  edgekit bench m.tflite --raw-check --threads 2  # edgekit p50 vs a bare invoke() loop
"""


def register(sub) -> None:
    import argparse

    from bench.runtimes import runtime_names

    p = sub.add_parser("bench", help="measure artifacts: accuracy, parity, latency",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Benchmark each ARTIFACT on its runtime (by suffix, or "
                       "--runtime). With --dataset: accuracy on its test split, and parity "
                       "against --reference. Without: latency on synthetic inputs of the "
                       "artifact's shape. One row per artifact and batch size.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    add_dataset_args(p)
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="reference artifact for parity (e.g. the .keras model)")
    p.add_argument("--runtime", default=None, help=f"one of {', '.join(runtime_names())}")
    p.add_argument("--device", default="cpu", help="cpu | gpu | cuda | tensorrt")
    p.add_argument("--allow-fallback", action="store_true",
                   help="accept a runtime that fell back to CPU (the row says what ran)")
    p.add_argument("--threads", type=positive_int, default=None, help="(intra-op) threads")
    p.add_argument("--inter-threads", type=positive_int, default=None,
                   help="onnxruntime inter-op threads")
    p.add_argument("--batch-sizes", default=None, help="latency batch sizes, e.g. 1,8,32")
    p.add_argument("--batch-size", type=positive_int, default=1, help="one latency batch size")
    p.add_argument("--min-runs", type=positive_int, default=50)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--warmup-runs", type=positive_int, default=5)
    p.add_argument("--warmup-seconds", type=float, default=0.2)
    p.add_argument("--no-xnnpack", action="store_true", help="litert: builtin kernels only")
    p.add_argument("--jit-compile", action="store_true", help="keras: XLA-compile the tf.function")
    p.add_argument("--graph-optimization", default="all",
                   choices=["disable", "basic", "extended", "all"], help="onnxruntime level")
    p.add_argument("--profile", action="store_true",
                   help="onnxruntime: record the provider of every node (one profiled run)")
    p.add_argument("--raw-check", action="store_true",
                   help="also time a bare invoke()/session.run() loop; report edgekit/bare p50")
    p.add_argument("--min-agreement", type=fraction, default=None,
                   help="gate: minimum top-1 agreement with --reference (exit 1 below it)")
    p.add_argument("--max-accuracy-drop", type=fraction, default=None,
                   help="gate: maximum accuracy drop vs --reference, as a fraction")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use N test images (a seeded random sample of the split)")
    p.add_argument("--json", default=None, metavar="PATH", help="write a report.json-shaped file")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write report.json, report.md and plots (latency, pareto, throughput)")
    p.add_argument("--in-process", action="store_true",
                   help="measure every artifact in this process instead of a fresh worker process "
                        "each (faster to start, but runtimes disturb each other: TensorFlow's "
                        "thread pools slow LiteRT measured after it)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from bench.parity import gate
    from toolkit.errors import GateFailed, UsageError
    from toolkit.validation import parse_list

    gated = args.min_agreement is not None or args.max_accuracy_drop is not None
    if gated and not (args.dataset and args.reference):
        raise UsageError("--min-agreement / --max-accuracy-drop need --dataset and --reference.")
    try:
        sizes = [int(b) for b in parse_list(args.batch_sizes)] or [args.batch_size]
    except ValueError:
        raise UsageError(f"--batch-sizes must be ints like 1,8,32; got {args.batch_sizes!r}.") from None
    if min(sizes) < 1:
        raise UsageError(f"--batch-sizes must be >= 1; got {args.batch_sizes!r}.")
    from export.manifest import find_manifest

    find_manifest(args.artifacts[0])  # fail early, in one line, on a missing manifest
    say = status_printer(args.quiet)
    ds_summary, images, labels, ref = _evaluation(args, say)
    rows = _bench_all(args, sizes, images, labels, ref)
    fails = [f"{r['format']}/{r['runtime']}: {f}" for r in rows
             if r["status"] == "ok" and r.get("batch_size") == sizes[0]
             and r.get("top1_agreement") is not None
             for f in gate(r, args.min_agreement, args.max_accuracy_drop)]
    from bench.report import print_table

    print_table(rows, title="edgekit bench")
    report = _report(args, ds_summary, rows)
    if gated:
        report["gate"] = {"min_agreement": args.min_agreement,
                          "max_accuracy_drop": args.max_accuracy_drop, "passed": not fails,
                          "failures": fails}
    _write(args, report)
    for r in rows:
        if r["status"] != "ok":
            out(f"failed {r['artifact']} (batch {r['batch_size']}): {r['error']}")
    if fails:
        raise GateFailed("Parity gate failed: " + "; ".join(fails))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def _evaluation(args, say):
    """(dataset summary, test images, labels, reference probabilities) per the flags."""
    from bench.core import bench_artifact, evaluation_split
    from export.manifest import find_manifest
    from toolkit.errors import BackendError

    summary = {"name": None, "num_classes": None, "class_names": None, "split": None}
    if not args.dataset:
        return summary, None, None, None
    say(f"loading dataset {args.dataset}")
    ds, images, labels = evaluation_split(args.dataset, find_manifest(args.artifacts[0]),
                                          args.seed, args.limit)
    ref = None
    if args.reference:
        say(f"reference {args.reference}")
        row, ref = bench_artifact(args.reference, images=images, labels=labels,
                                  threads=args.threads, latency=False)
        if row["status"] != "ok":
            raise BackendError(f"Reference {args.reference} failed: {row['error']}")
    return ds.summary(), images, labels, ref


def _runtime_kw(args, runtime: str) -> dict:
    """The flags each runtime takes (a runtime gets only its own)."""
    return {"litert": {"xnnpack": not args.no_xnnpack},
            "keras": {"jit_compile": args.jit_compile},
            "onnxruntime": {"graph_optimization": args.graph_optimization,
                            "inter_threads": args.inter_threads, "profile": args.profile},
            }.get(runtime, {})


def _bench_all(args, sizes, images, labels, ref) -> list[dict]:
    """Every artifact at every batch size, under a rich progress bar (stderr)."""
    from rich.console import Console
    from rich.progress import Progress

    from bench.core import bench_batches, bench_isolated
    from bench.runtimes import runtime_for
    from pathlib import Path

    report_dir = Path(args.out) if args.out else Path(args.json).parent if args.json else Path(".")
    measure_kw = {"min_runs": args.min_runs, "min_seconds": args.min_seconds,
                  "warmup_runs": args.warmup_runs, "warmup_seconds": args.warmup_seconds}
    rows = []
    with Progress(console=Console(stderr=True), transient=True, disable=args.quiet) as bar:
        task = bar.add_task("bench", total=len(args.artifacts) * (len(sizes) + 1))
        for i, a in enumerate(args.artifacts):
            bar.update(task, description=f"{Path(a).name}")
            try:
                runtime = args.runtime or runtime_for(a)
            except Exception:
                runtime = None  # bench_batches turns it into a failed row
            measure = bench_batches if args.in_process else bench_isolated
            got, _ = measure(a, runtime=runtime, device=args.device, threads=args.threads,
                             images=images, labels=labels, reference=ref, batch_sizes=sizes,
                             report_dir=report_dir, allow_fallback=args.allow_fallback,
                             measure_kw=measure_kw, runtime_kw=_runtime_kw(args, runtime),
                             raw_check=args.raw_check, progress=lambda msg: bar.advance(task))
            rows.extend(got)
            bar.update(task, completed=(i + 1) * (len(sizes) + 1))
    return rows


def _report(args, ds_summary, rows) -> dict:
    import datetime

    from bench.env import environment
    from export.manifest import find_manifest
    from toolkit import __version__

    first = find_manifest(args.artifacts[0])
    env = environment(args.threads)
    env["thread_settings"] = {"threads": args.threads, "inter_threads": args.inter_threads}
    return {"edgekit_version": __version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": args.command_line,
            "dataset": ds_summary,
            "model": {"name": first.source.get("model_name"), "params": None,
                      "input_shape": first.input.shape[1:], "sha256": first.source.get("sha256")},
            "measurement": {"min_runs": args.min_runs, "min_seconds": args.min_seconds,
                            "warmup_runs": args.warmup_runs, "warmup_seconds": args.warmup_seconds},
            "env": env, "results": rows}


def _write(args, report) -> None:
    import json

    from bench.report import write_report
    from export.artifact import atomic_write_bytes

    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, json.dumps(report, indent=2, default=str).encode())
        out(f"wrote {args.json}")
    if args.out:
        from bench.plots import write_plots

        j, m = write_report(report, args.out)
        plots = write_plots(report["results"], args.out)
        out(f"wrote {j}, {m}, " + ", ".join(p.name for p in plots))
