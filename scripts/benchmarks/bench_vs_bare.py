"""Do `edgeproof bench`'s defaults hold up? Its batch-1 p50 with no flags against the fastest
bare loop over thread counts, on files the product did not build.

The model is Chollet's flowers CNN at 150 px (4x Conv-MaxPool, Dense512) built with plain
tf_keras, random weights (latency does not depend on them), converted with the
libraries directly: TFLiteConverter (float32 and dynamic-range) and tf2onnx; no manifest.
Each file is measured ``--repeat`` times both ways, each time in a fresh process, and
the best p50 kept. The bare loop is a few lines of plain LiteRT / ONNX Runtime code (no
edgeproof import): ``interpreter.invoke()`` / ``session.run()`` on a prepared input, for
1, 2, … threads and the library's default.

Usage:
    python scripts/benchmarks/bench_vs_bare.py --out docs/benchmarks/defaults_vs_bare.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeproof.bench.threads import thread_candidates
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: evidence.py
from evidence import provenance, write_json  # noqa: E402

BARE = r"""
import sys, time, numpy as np
path, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
threads = None if threads == "default" else int(threads)
if path.endswith(".tflite"):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).random(d["shape"], dtype=np.float32))
    call = it.invoke
else:
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    feed = {i.name: np.random.default_rng(0).random([1] + list(i.shape[1:]), dtype=np.float32)}
    call = lambda: s.run(None, feed)
for _ in range(10):
    call()
t = []
for _ in range(runs):
    a = time.perf_counter(); call(); t.append(time.perf_counter() - a)
print(float(np.percentile(np.array(t) * 1e3, 50)))
"""


def build_foreign(out: Path) -> list[Path]:
    """The flowers CNN with plain tf_keras, converted without edgeproof (no manifests)."""
    import tf2onnx

    from edgeproof.tfcompat import keras, tf

    k, t = keras(), tf()
    inp = k.Input((150, 150, 3))
    x = inp
    for filters in (32, 64, 128, 128):
        x = k.layers.MaxPooling2D(2)(k.layers.Conv2D(filters, 3, activation="relu")(x))
    x = k.layers.Dense(512, activation="relu")(k.layers.Flatten()(x))
    model = k.Model(inp, k.layers.Dense(5, activation="softmax")(x))
    files = []
    for name, optimize in (("flowers-fp32.tflite", False), ("flowers-dynamic.tflite", True)):
        conv = t.lite.TFLiteConverter.from_keras_model(model)
        if optimize:
            conv.optimizations = [t.lite.Optimize.DEFAULT]
        (out / name).write_bytes(conv.convert())
        files.append(out / name)
    spec = (t.TensorSpec([None, 150, 150, 3], t.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    (out / "flowers-fp32.onnx").write_bytes(proto.SerializeToString())
    return files + [out / "flowers-fp32.onnx"]


def edgeproof_p50(path: Path, tmp: Path) -> dict:
    report = tmp / f"{path.stem}.json"
    subprocess.run([sys.executable, "-m", "edgeproof", "bench", str(path), "--quiet", "--json",
                    str(report)], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    row = json.loads(report.read_text())["results"][0]
    return {"p50_ms": row["latency_ms"]["p50"], "threads": row["threads"],
            "sweep": row["thread_sweep"]}


def bare_p50(path: Path, threads, runs: int) -> float:
    out = subprocess.run([sys.executable, "-c", BARE, str(path), str(threads or "default"),
                          str(runs)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--runs", type=int, default=300)
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for path in build_foreign(tmp):
            ours = min((edgeproof_p50(path, tmp) for _ in range(a.repeat)),
                       key=lambda r: r["p50_ms"])
            bare = {str(t or "default"): min(bare_p50(path, t, a.runs) for _ in range(a.repeat))
                    for t in thread_candidates()}
            best = min(bare.values())
            rows.append({"file": path.name, "edgeproof_p50_ms": ours["p50_ms"],
                         "edgeproof_threads": ours["threads"], "bare_p50_ms": bare,
                         "ratio_to_fastest_bare": round(ours["p50_ms"] / best, 3)})
            print(json.dumps(rows[-1]), flush=True)
    write_json(a.out, {**provenance("scripts/benchmarks/bench_vs_bare.py", sys.argv[1:]),
                       "repeat": a.repeat,
                       "bare_runs": a.runs, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
