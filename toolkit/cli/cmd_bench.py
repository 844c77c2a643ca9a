"""`edgekit bench`: accuracy, parity and latency of artifacts on their runtimes."""

from __future__ import annotations

from toolkit.cli.common import add_dataset_args, out, positive_int, status_printer


def register(sub) -> None:
    from bench.runtimes import runtime_names

    p = sub.add_parser("bench", help="measure artifacts: accuracy, parity, latency",
                       description="Benchmark each ARTIFACT on its runtime (by suffix, or "
                       "--runtime). With --dataset: accuracy on its test split, and parity "
                       "against --reference. Without: latency on synthetic inputs of the "
                       "artifact's shape.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT")
    add_dataset_args(p)
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="reference artifact for parity (e.g. the .keras model)")
    p.add_argument("--runtime", default=None, help=f"one of {', '.join(runtime_names())}")
    p.add_argument("--device", default="cpu", help="cpu | cuda | tensorrt (onnxruntime)")
    p.add_argument("--allow-fallback", action="store_true",
                   help="accept a runtime that fell back to CPU (the row says what ran)")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=1, help="latency batch size")
    p.add_argument("--min-runs", type=positive_int, default=50)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--limit", type=positive_int, default=None, help="use the first N test images")
    p.add_argument("--json", default=None, metavar="PATH", help="write a report.json-shaped file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import datetime
    import json
    import os
    from pathlib import Path

    from bench.core import bench_artifact, evaluation_split
    from bench.env import environment
    from bench.report import print_table
    from export.artifact import atomic_write_bytes
    from export.manifest import find_manifest
    from toolkit import __version__

    say = status_printer(args.quiet)
    images = labels = ref = None
    ds_summary = {"name": None, "num_classes": None, "class_names": None, "split": None}
    first = find_manifest(args.artifacts[0])
    if args.dataset:
        say(f"loading dataset {args.dataset}")
        ds, images, labels = evaluation_split(args.dataset, first, args.seed, args.limit)
        ds_summary = ds.summary()
        if args.reference:
            say(f"reference {args.reference}")
            row, ref = bench_artifact(args.reference, images=images, labels=labels,
                                      threads=args.threads, latency=False)
            if row["status"] != "ok":
                from toolkit.errors import BackendError

                raise BackendError(f"Reference {args.reference} failed: {row['error']}")
    report_dir = Path(args.json).parent if args.json else Path(".")
    rows = []
    for a in args.artifacts:
        say(f"benchmarking {a}")
        row, _ = bench_artifact(a, runtime=args.runtime, device=args.device, threads=args.threads,
                                images=images, labels=labels, reference=ref,
                                batch_size=args.batch_size, report_dir=report_dir,
                                allow_fallback=args.allow_fallback,
                                measure_kw={"min_runs": args.min_runs,
                                            "min_seconds": args.min_seconds})
        rows.append(row)
    print_table(rows, title="edgekit bench")
    if args.json:
        report = {"edgekit_version": __version__,
                  "created": datetime.datetime.now().isoformat(timespec="seconds"),
                  "dataset": ds_summary,
                  "model": {"name": first.source.get("model_name"), "params": None,
                            "input_shape": first.input.shape[1:], "sha256": first.source.get("sha256")},
                  "env": environment(args.threads), "results": rows}
        os.makedirs(report_dir, exist_ok=True)
        atomic_write_bytes(args.json, json.dumps(report, indent=2, default=str).encode())
        out(f"wrote {args.json}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1
