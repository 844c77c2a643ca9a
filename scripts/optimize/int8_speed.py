"""int8 against float, per CPU: p50 of tflite-int8 / tflite-fp32 and onnx-int8 / onnx-fp32 at
batch 1 (docs/OPTIMIZE.md "int8 speed per CPU kind").

Each MODEL is exported with ``edgeproof export`` (default options: the int8 files get the
default rewrites), then ``edgeproof bench --repeat 2`` measures the four files, threads
auto-tuned, each in fresh processes, interleaved. Writes OUT with the CPU (model, ISA
flags) of the machine, the commands and the date. Run it on an idle machine.

Usage:
    python scripts/optimize/int8_speed.py MODEL... --calib ../shared/datasets/cifar10.npz \\
        --out docs/optimize/int8/speed-<cpu>.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

FORMATS = ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8")


def _edgeproof(*args) -> None:
    r = subprocess.run([sys.executable, "-P", "-m", "edgeproof", *map(str, args)],
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(r.stderr.strip().splitlines()[-1])


def measure(model: str, calib: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        _edgeproof("export", model, "--format", ",".join(FORMATS), "--calib", calib,
                   "--out", d, "--name", "m", "--quiet")
        files = [next(Path(d).glob(f"m-{f}.*[!n]")) for f in FORMATS]
        _edgeproof("bench", *files, "--repeat", "2", "--json", f"{d}/bench.json", "--quiet")
        rows = {r["format"]: r for r in json.loads(Path(d, "bench.json").read_text())["results"]}
    p50 = {f: rows[f]["latency_ms"]["p50"] for f in FORMATS}
    return {"model": model, "p50_ms": p50,
            "p50_ci": {f: rows[f]["latency_ms"]["p50_ci"] for f in FORMATS},
            "threads": {f: rows[f]["threads"] for f in FORMATS},
            "tflite_int8_over_fp32": round(p50["tflite-int8"] / p50["tflite-fp32"], 3),
            "onnx_int8_over_fp32": round(p50["onnx-int8"] / p50["onnx-fp32"], 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--calib", required=True)
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args(argv)
    rows = []
    for m in a.models:
        rows.append(measure(m, a.calib))
        print(json.dumps(rows[-1]), flush=True)
    write_json(a.out, {**provenance("scripts/optimize/int8_speed.py", sys.argv[1:]),
                       "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
