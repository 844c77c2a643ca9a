"""docs/BENCHMARKS.md from kept data: measure (``run``) and render (``render``).

``run FOLDER --name NAME`` benchmarks every artifact of a model folder (from
``scripts/benchmarks/bench_models.py``) with ``edgeproof bench``'s defaults (threads auto-tuned, one
worker per artifact) at batch 1 (with the bare-loop check) and 32, plus LiteRT without
XNNPACK at batch 1, ``--repeat`` times, keeps the lowest p50 per row (other load only
slows a run down) and writes ``docs/benchmarks/NAME.json``: the slim rows, the commands,
the machine and the date.

``render`` writes docs/BENCHMARKS.md from every JSON in docs/benchmarks/ (the model
tables, ``knobs.json`` from scripts/benchmarks/bench_knobs.py, ``defaults_vs_bare.json`` from
scripts/benchmarks/bench_vs_bare.py). Every number in the page, prose included, is computed here
from those files; tests/docs/test_benchmarks_doc.py checks that the page is in sync.

Usage:
    python scripts/benchmarks/bench_docs.py run /work/bm/inception_v3 --name inception_v3 --limit 100
    python scripts/benchmarks/bench_docs.py render
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_docs_render import render  # noqa: E402  (scripts/ is on sys.path when run)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "benchmarks"
FLOWERS = ROOT.parent / "shared" / "datasets" / "flowers"
KEEP = ("format", "runtime", "device", "providers", "size_bytes", "accuracy", "top1_agreement",
        "max_abs_diff", "batch_size", "threads", "thread_sweep", "throughput_ips", "load_ms",
        "status", "error")


def settings(folder: Path, limit: int, runs32: int) -> list[tuple[str, list[str]]]:
    """(variant, argv) of each edgeproof bench call for one model folder."""
    keras = sorted(folder.glob("*-keras.keras"))
    arts = [str(p) for p in keras + sorted(folder.glob("*.tflite")) + sorted(folder.glob("*.onnx"))]
    tfl = [str(p) for p in sorted(folder.glob("*.tflite"))]
    data = ["--dataset", str(FLOWERS), "--limit", str(limit)]
    if keras:
        data += ["--reference", str(keras[0])]
    return [("default", [*arts, *data, "--batch-sizes", "1", "--bare-loop"]),
            ("default", [*arts, *data, "--batch-sizes", "32", "--min-runs", str(runs32)]),
            ("no-xnnpack", [*tfl, *data, "--batch-sizes", "1", "--runtime-option",
                            "xnnpack=false"])]


def slim(row: dict, variant: str) -> dict:
    """The fields the page shows, from one report row."""
    out = {k: row.get(k) for k in KEEP}
    out["variant"] = variant
    out["latency_ms"] = {k: (row.get("latency_ms") or {}).get(k) for k in ("p50", "p90")}
    details = row.get("runtime_details") or {}
    out["details"] = {k: details[k] for k in ("delegate_nodes", "builtin_ops") if k in details}
    out["bare_ratio"] = (row.get("bare_loop") or {}).get("ratio")
    return out


def run_setting(argv: list[str], out: Path) -> list[dict]:
    # Started outside any checkout: run inside one, `-m edgeproof` would import that
    # checkout's edgeproof/ folder instead of the installed package.
    subprocess.run([sys.executable, "-m", "edgeproof", "bench", *argv, "--quiet", "--out",
                    str(out)], cwd=out.parent, check=False, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text())["results"]


def measure(folder: Path, name: str, limit: int, repeat: int, runs32: int) -> dict:
    best: dict[tuple, dict] = {}
    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (variant, argv) in enumerate(settings(folder, limit, runs32)):
            commands.append("edgeproof bench " + shlex.join(argv))
            for rep in range(repeat):
                for row in run_setting(argv, Path(tmp) / f"s{i}-r{rep}"):
                    key = (row["format"], row["runtime"], variant, row["batch_size"])
                    p50 = (row.get("latency_ms") or {}).get("p50") or float("inf")
                    if key not in best or p50 < best[key]["latency_ms"]["p50"]:
                        best[key] = slim(row, variant)
    env = json.loads(subprocess.run([sys.executable, "-c", "import json; from "
                                     "edgeproof.bench.env import environment; "
                                     "print(json.dumps(environment()))"],
                                    capture_output=True, text=True, check=True).stdout)
    return {"name": name, "created": datetime.date.today().isoformat(),
            "machine": platform.node(), "repeat": repeat, "limit": limit,
            "build": f"python scripts/benchmarks/bench_models.py {name} --out {folder}",
            "commands": commands,
            "env": {k: env.get(k) for k in ("cpu", "cores", "isa", "python", "tensorflow",
                                            "onnxruntime", "ai_edge_litert")},
            "rows": sorted(best.values(), key=lambda r: (r["batch_size"], r["format"],
                                                         r["runtime"], r["variant"]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--name", required=True)
    r.add_argument("--limit", type=int, default=200)
    r.add_argument("--repeat", type=int, default=2)
    r.add_argument("--runs32", type=int, default=10)
    rr = sub.add_parser("render")
    rr.add_argument("--check", action="store_true",
                    help="exit 1 when docs/BENCHMARKS.md differs from its data")
    a = p.parse_args(argv)
    if a.cmd == "run":
        doc = measure(a.folder, a.name, a.limit, a.repeat, a.runs32)
        doc["command"] = "python scripts/benchmarks/bench_docs.py " + shlex.join(sys.argv[1:] if argv is None
                                                                      else argv)
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA / f"{a.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    page, target = render(DATA), ROOT / "docs" / "BENCHMARKS.md"
    if getattr(a, "check", False):
        same = target.read_text() == page
        print("in sync" if same else f"{target} differs from its data: run "
              "python scripts/benchmarks/bench_docs.py render")
        return 0 if same else 1
    target.write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
