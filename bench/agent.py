"""edgeproof's device agent: runs artifacts on a device that has only a runtime and numpy.

``edgeproof bench --on ssh://…`` copies this file and ``timing.py`` (both standard
library and numpy only; never installed) with the artifacts and their prepared inputs
into a temporary folder on the device, and runs ``python agent.py FOLDER``. For every
artifact and repeat, in an interleaved order (A B C A B C …), a fresh process of this
file loads the artifact on the device's own runtime (ai-edge-litert or tflite-runtime for
``.tflite``, onnxruntime for ``.onnx``), runs the evaluation inputs, sweeps the thread
counts, and times each batch size with the same loop as on the host. It writes the raw
outputs and the timings to ``FOLDER/out/``; the host computes accuracy, parity and the
intervals, and removes the folder.

The agent leaves nothing else behind: before anything runs it points ``TMPDIR`` and every
cache folder a runtime or Python may write to (``confined_env``) inside FOLDER, and it
runs without writing bytecode, so removing FOLDER leaves the device as it was (ONNX
Runtime, for one, writes a ``.ses`` file into ``$TMPDIR``).

Example (on the device, what the host runs over SSH):
    python -B /tmp/edgeproof-x1y2/agent.py /tmp/edgeproof-x1y2
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata

import numpy as np

try:  # inside edgeproof on the host; on the device the file is sent beside this one
    from edgeproof.bench.timing import Measurement, fastest, thread_candidates, time_calls
except ImportError:  # pragma: no cover (exercised on the device)
    from timing import Measurement, fastest, thread_candidates, time_calls

SWEEP = Measurement(warmup_runs=3, warmup_seconds=0.05, min_runs=10, min_seconds=0.25)
INSTALL = {
    "litert": "pip install ai-edge-litert (or tflite-runtime); neither has Linux aarch64 "
              "wheels on the package index at ai-edge-litert 2.3, so a Raspberry Pi needs a "
              "build from its vendor or benchmarks .onnx files instead",
    "onnxruntime": "pip install onnxruntime (wheels for Linux x86-64 and aarch64, macOS, "
                   "Windows)"}
# Rows the agent has no runtime for: what to do on such a device instead (one line).
ELSEWHERE = {
    "executorch": ".pte files do not run over SSH yet (the agent runs litert and onnxruntime): "
                  "on the device, pip install \"edgeproof[torch]\" (it pins executorch) and run "
                  "edgeproof bench there, or bench the .tflite/.onnx export",
    "openvino": "OpenVINO rows do not run over SSH yet (the agent runs litert and onnxruntime): "
                "on the device, pip install \"edgeproof[openvino]\" (it pins openvino) and run "
                "edgeproof bench there, or bench the .onnx export with onnxruntime"}
# Where Python and the runtimes may write scratch or cache files, each sent to a folder
# inside the work folder (HOME is left alone: a runtime installed with pip --user lives
# under it). TMPDIR covers ONNX Runtime's .ses file and anything using tempfile.
CONFINED = {"TMPDIR": "tmp", "TMP": "tmp", "TEMP": "tmp", "XDG_CACHE_HOME": "cache",
            "XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data", "PYTHONPYCACHEPREFIX": "pycache",
            "MPLCONFIGDIR": "cache/matplotlib", "TORCHINDUCTOR_CACHE_DIR": "cache/torchinductor",
            "TRITON_CACHE_DIR": "cache/triton", "CUDA_CACHE_PATH": "cache/nv",
            "NUMBA_CACHE_DIR": "cache/numba", "HF_HOME": "cache/huggingface",
            "KERAS_HOME": "cache/keras", "OV_CACHE_DIR": "cache/openvino"}


def confined_env(folder: str) -> dict:
    """The environment variables that keep every scratch and cache file inside ``folder``.

    Example:
        >>> env = confined_env("/tmp/edgeproof-x1y2")
        >>> env["TMPDIR"], env["XDG_CACHE_HOME"], env["PYTHONDONTWRITEBYTECODE"]
        ('/tmp/edgeproof-x1y2/tmp', '/tmp/edgeproof-x1y2/cache', '1')
    """
    env = {key: os.path.join(folder, *sub.split("/")) for key, sub in CONFINED.items()}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def confine(folder: str) -> None:
    """Make this process, and every process it starts, write only inside ``folder``
    (the folders exist first: ``tempfile`` would quietly fall back to /tmp otherwise)."""
    env = confined_env(folder)
    for key in CONFINED:
        os.makedirs(env[key], exist_ok=True)
    os.environ.update(env)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    sys.dont_write_bytecode = True


class _LiteRT:
    """A .tflite file on ai-edge-litert, else tflite-runtime (XNNPACK by default)."""

    name, default_threads = "litert", 1

    def __init__(self, path: str, threads, options: dict):
        try:
            from ai_edge_litert.interpreter import Interpreter
            self.library = "ai-edge-litert"
        except ImportError:
            from tflite_runtime.interpreter import Interpreter
            self.library = "tflite-runtime"
        self.interp = Interpreter(model_path=path, num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.batch = int(self.interp.get_input_details()[0]["shape"][0])
        self.providers = ["XNNPACK", "CPU"] if any(
            n["op_name"] == "DELEGATE" for n in self.interp._get_ops_details()) else ["CPU"]

    def bind(self, x: np.ndarray):
        if len(x) != self.batch:
            shape = list(self.interp.get_input_details()[0]["shape"])
            shape[0] = len(x)
            self.interp.resize_tensor_input(self.inp, shape)
            self.interp.allocate_tensors()
            self.batch = len(x)
        self.interp.set_tensor(self.inp, x)
        invoke, get, out = self.interp.invoke, self.interp.get_tensor, self.out
        return lambda: (invoke(), get(out))[1]


class _OnnxRuntime:
    """An .onnx file on onnxruntime with the providers the device asks for."""

    name = "onnxruntime"
    PROVIDERS = {"cpu": ["CPUExecutionProvider"],
                 "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                 "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                              "CPUExecutionProvider"]}

    def __init__(self, path: str, threads, options: dict):
        import onnxruntime as ort

        self.library = "onnxruntime"
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        for key, value in (options.get("session_options") or {}).items():
            opts.add_session_config_entry(key, str(value))
        wanted = self.PROVIDERS[options.get("device", "cpu")]
        if wanted[0] != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
            try:  # CUDA/cuDNN from the nvidia-* wheels, where the system has none
                ort.preload_dlls()
            except Exception:
                pass  # the session below says which providers it could create
        usable = [p for p in wanted if p in ort.get_available_providers()] or wanted[-1:]
        self.sess = ort.InferenceSession(path, opts, providers=usable)
        self.providers = self.sess.get_providers()
        self.feed = self.sess.get_inputs()[0].name
        self.default_threads = os.cpu_count() or 1

    def bind(self, x: np.ndarray):
        run, feed = self.sess.run, {self.feed: x}
        return lambda: run(None, feed)[0]


RUNTIMES = {"litert": _LiteRT, "onnxruntime": _OnnxRuntime}


def device_info() -> dict:
    """What this device is: hostname, CPU, ISA flags, OS, Python, runtime versions."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
        for line in text.splitlines():
            key, _, val = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and cpu in ("", platform.machine()):
                cpu = val.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = val.split()
    except OSError:
        pass
    keep = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon",
            "asimd", "asimddp", "sve")
    versions = {}
    for dist in ("ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"hostname": socket.gethostname(), "cpu": cpu, "machine": platform.machine(),
            "isa": [f for f in keep if f in flags], "os": platform.platform(),
            "python": platform.python_version(), "cores": os.cpu_count(), "versions": versions,
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _open(job: dict, threads):
    cls = RUNTIMES.get(job["runtime"])
    if cls is None:
        raise RuntimeError(ELSEWHERE.get(job["runtime"], f"no {job['runtime']} runtime in the "
                                         "device agent (it runs litert and onnxruntime)"))
    try:
        return cls(job["file"], threads, job.get("options") or {})
    except ImportError as e:
        raise RuntimeError(f"{job['runtime']} is not installed on {socket.gethostname()} "
                           f"({e.name or e}): {INSTALL[job['runtime']]}") from None


def _sweep(job: dict, x: np.ndarray) -> tuple[object, dict]:
    """(the fastest thread count, p50 per setting) on the latency input ``x``."""
    p50 = {}
    for t in thread_candidates():
        rt = _open(job, t)
        p50[t] = float(np.median(time_calls(rt.bind(x), SWEEP)[1]))
    return fastest(p50), {("default" if t is None else str(t)): round(v, 4) for t, v in p50.items()}


def measure_one(folder: str, index: int, repeat: int) -> dict:
    """Run artifact ``index`` of ``folder/job.json`` once; write its outputs, return timings."""
    spec = json.load(open(os.path.join(folder, "job.json")))
    job = {**spec["artifacts"][index], "file": os.path.join(folder, spec["artifacts"][index]["file"])}
    settings = Measurement(**spec["measurement"])
    x_lat = np.load(os.path.join(folder, job["latency_input"]))
    result = {"index": index, "repeat": repeat}
    threads = job["threads"] if isinstance(job["threads"], int) else None
    if job["threads"] == "auto" and job.get("options", {}).get("device", "cpu") == "cpu":
        threads, result["thread_sweep"] = _sweep(job, x_lat[:job["batch_sizes"][0]])
    t0 = time.perf_counter()
    rt = _open(job, threads)
    result.update(load_ms=round((time.perf_counter() - t0) * 1e3, 2), providers=rt.providers,
                  library=rt.library, threads=threads or rt.default_threads,
                  threads_default=threads is None)
    if repeat == 0 and job.get("eval_input"):
        x = np.load(os.path.join(folder, job["eval_input"]))
        b = spec.get("eval_batch_size", 32)
        outs = [np.asarray(rt.bind(x[i:i + b])()) for i in range(0, len(x), b)]
        np.save(os.path.join(folder, "out", f"raw-{index}.npy"), np.concatenate(outs))
    result["latency"] = {}
    for b in job["batch_sizes"]:
        reps = -(-b // len(x_lat))
        xb = np.ascontiguousarray(np.concatenate([x_lat] * reps)[:b])
        first_ms, ms = time_calls(rt.bind(xb), settings)
        result["latency"][str(b)] = {"first_ms": round(first_ms, 4),
                                     "samples_ms": [round(v, 5) for v in ms.tolist()]}
    return result


def run_all(folder: str) -> int:
    """Every artifact, ``repeat`` times, interleaved, each run in a fresh process."""
    spec = json.load(open(os.path.join(folder, "job.json")))
    os.makedirs(os.path.join(folder, "out"), exist_ok=True)
    results = []
    for r in range(spec.get("repeat", 1)):
        for i in range(len(spec["artifacts"])):
            p = subprocess.run([sys.executable, "-B", __file__, folder, "--one", str(i), str(r)],
                               capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                results.append(json.loads(p.stdout.strip().splitlines()[-1]))
                continue
            err = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            results.append({"index": i, "repeat": r, "error": err[:300]})
    with open(os.path.join(folder, "out", "result.json"), "w") as fh:
        json.dump({"device": device_info(), "results": results}, fh)
    return 0


def main(argv: list[str]) -> int:
    confine(argv[0])  # first: nothing may write outside the work folder
    if len(argv) >= 4 and argv[1] == "--one":
        try:
            print(json.dumps(measure_one(argv[0], int(argv[2]), int(argv[3]))))
            return 0
        except Exception as e:  # one line back to the host, never a traceback
            print(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                  file=sys.stderr)
            return 1
    return run_all(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
