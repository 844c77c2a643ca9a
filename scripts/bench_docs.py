"""Run the benchmarks of docs/BENCHMARKS.md and print their table (best of repeated runs).

For one folder of exports (from ``scripts/bench_models.py``) it runs ``edgeproof bench``
``--repeat`` times per setting and keeps, for each row (format, runtime, variant, batch),
the run with the lowest p50: other processes on a shared machine only ever make a run
slower, so the best run is the closest to the machine's own speed.

Settings: batch 1 (with ``--bare-loop``) and batch 32, XNNPACK on, plus LiteRT without
XNNPACK (builtin kernels); accuracy and parity against the ``.keras`` export on the test
split of the shared flowers dataset.

Example:
    python scripts/bench_docs.py /tmp/ekb/flowers_cnn_dropout --out runs/bench/flowers --repeat 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOWERS = ROOT.parent / "shared" / "datasets" / "flowers"


def settings(folder: Path, limit: int, runs1: int, runs32: int, threads: int) -> list[tuple]:
    """(variant, argv) of every edgeproof bench call for one model folder."""
    keras = sorted(folder.glob("*-keras.keras"))
    arts = keras + sorted(folder.glob("*.tflite")) + sorted(folder.glob("*.onnx"))
    tfl = sorted(folder.glob("*.tflite"))
    data = ["--dataset", str(FLOWERS), "--limit", str(limit), "--threads", str(threads)]
    if keras:
        data += ["--reference", str(keras[0])]
    b1 = ["--batch-sizes", "1", "--min-runs", str(runs1), "--min-seconds", "1", "--bare-loop"]
    b32 = ["--batch-sizes", "32", "--min-runs", str(runs32), "--min-seconds", "1"]
    return [("default", [*map(str, arts), *data, *b1]),
            ("default", [*map(str, arts), *data, *b32]),
            ("no-xnnpack", [*map(str, tfl), *data, *b1, "--runtime-option", "xnnpack=false"]),
            ("no-xnnpack", [*map(str, tfl), *data, *b32, "--runtime-option", "xnnpack=false"])]


def run_bench(argv: list[str], out: Path) -> list[dict]:
    cmd = [sys.executable, "-m", "edgeproof", "bench", *argv, "--quiet", "--out", str(out)]
    print("$ edgeproof bench " + shlex.join(argv + ["--out", str(out)]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text())["results"]


def best_rows(all_rows: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Per (format, runtime, variant, batch), the row with the lowest p50."""
    best: dict[tuple, tuple[str, dict]] = {}
    for variant, r in all_rows:
        key = (r["format"], r["runtime"], variant, r["batch_size"])
        p50 = (r.get("latency_ms") or {}).get("p50", float("inf"))
        if key not in best or p50 < (best[key][1].get("latency_ms") or {}).get("p50", float("inf")):
            best[key] = (variant, r)
    return list(best.values())


def markdown(rows: list[tuple[str, dict]]) -> str:
    head = ("| format | runtime | ran on | batch | size MB | accuracy | top-1 agree | max abs dp | "
            "p50 ms | p90 ms | img/s | load ms | peak RSS dMB | raw ratio |\n" + "|---" * 14 + "|")
    lines = [head]
    for variant, r in sorted(rows, key=lambda vr: (vr[1]["batch_size"], vr[1]["format"],
                                                   vr[1]["runtime"], vr[0])):
        lat, raw = r.get("latency_ms") or {}, r.get("bare_loop") or {}
        ran = ",".join(p.replace("ExecutionProvider", "") for p in r.get("providers") or [])
        f = (lambda v, spec: "-" if v is None else format(v, spec))
        lines.append(
            f"| {r['format']} | {r['runtime']}{'' if variant == 'default' else ' ' + variant} | "
            f"{ran or r.get('error', '-')} | {r['batch_size']} | "
            f"{f((r.get('size_bytes') or 0) / 2**20, '.2f')} | {f(r.get('accuracy'), '.3f')} | "
            f"{f(r.get('top1_agreement'), '.3f')} | {f(r.get('max_abs_diff'), '.1e')} | "
            f"{f(lat.get('p50'), '.2f')} | {f(lat.get('p90'), '.2f')} | "
            f"{f(r.get('throughput_ips'), '.1f')} | {f(r.get('load_ms'), '.0f')} | "
            f"{f((r.get('memory_mb') or {}).get('peak_delta'), '.0f')} | "
            f"{f(raw.get('ratio'), '.3f')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--runs1", type=int, default=50)
    p.add_argument("--runs32", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", default="", help="comma-separated setting indices to skip (0-3)")
    a = p.parse_args(argv)
    skip = {int(i) for i in a.skip.split(",") if i}
    rows = []
    for i, (variant, args) in enumerate(settings(a.folder, a.limit, a.runs1, a.runs32, a.threads)):
        if i in skip:
            continue
        for rep in range(a.repeat):
            rows += [(variant, r) for r in run_bench(args, a.out / f"s{i}-r{rep}")]
    table = markdown(best_rows(rows))
    (a.out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
