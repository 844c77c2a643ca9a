"""Benchmark on the device itself, over SSH: ``edgeproof bench --on ssh://[user@]host[:port][/python]``.

The host prepares each artifact's inputs (the manifest's preprocessing, so the device
sees the same tensors as every local runtime), copies the artifacts, those inputs and
the agent (``bench/agent.py`` + ``bench/timing.py``: standard library and numpy only)
into a new folder in the device's temporary folder, runs the agent with the device's
own Python and runtime, brings back the raw outputs and timings, and removes the folder
whatever happened. Nothing else is left on the device: every Python runs with ``-B`` (no
bytecode written), and the agent keeps ``TMPDIR`` and the runtimes' cache folders inside
its work folder (``agent.confined_env``). Accuracy, parity and the latency intervals are computed here, the
same way as for local rows; each row names its device (``device_id``, and the agent's
hostname, CPU, ISA flags, OS and runtime versions in ``runtime_details.device``).

The system OpenSSH client does the connecting, so the user's ``~/.ssh/config``, keys,
agent and jump hosts work as they do for ``ssh``; ``ssh_config`` (``--ssh-config``) adds
a config file of its own (``ssh -F``).

Example:
    >>> Target.parse("ssh://pi@raspberrypi:2222/home/pi/venv/bin/python").ssh_args()
    ['-p', '2222', 'pi@raspberrypi']
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from edgeproof.bench import agent, timing
from edgeproof.bench.derive import artifact_manifest
from edgeproof.bench.measure import LatencyStats
from edgeproof.bench.parity import compare
from edgeproof.bench.row import BenchRow, failed_rows
from edgeproof.bench.runtimes import get_runtime_class, runtime_for
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.stats import spread
from edgeproof.errors import RuntimeFailure, UsageError
from edgeproof.preprocess import postprocess, prepare

_MKDIR = "import tempfile; print(tempfile.mkdtemp(prefix='edgeproof-'))"
_UNTAR = "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|').extractall(sys.argv[1])"
_TAR = ("import sys, tarfile; t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|'); "
        "t.add(sys.argv[1], arcname='out'); t.close()")
_RMTREE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"


@dataclass(frozen=True)
class Target:
    """Where to run: ``local`` or ``ssh://[user@]host[:port][/absolute/path/to/python]``."""

    spec: str
    host: str | None = None
    user: str | None = None
    port: int | None = None
    python: str = "python3"

    @classmethod
    def parse(cls, spec: str) -> "Target":
        """Read one ``--on`` value; a malformed one is a UsageError saying the form.

        Example:
            >>> Target.parse("local").is_local, Target.parse("ssh://gw").python
            (True, 'python3')
        """
        if spec == "local":
            return cls("local")
        parts = urlsplit(spec)
        if parts.scheme != "ssh" or not parts.hostname:
            raise UsageError(f"--on {spec!r}: expected local or ssh://[user@]host[:port]"
                             "[/absolute/path/to/python].")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"--on {spec!r}: the port must be a number.") from None
        return cls(spec, parts.hostname, parts.username, port, parts.path or "python3")

    @property
    def is_local(self) -> bool:
        return self.host is None

    @property
    def device_id(self) -> str:
        """How rows name this device: ``local``, or ``[user@]host[:port]``."""
        if self.is_local:
            return "local"
        return (f"{self.user}@" if self.user else "") + self.host + \
            (f":{self.port}" if self.port else "")

    def ssh_args(self) -> list[str]:
        return (["-p", str(self.port)] if self.port else []) + \
            [(f"{self.user}@" if self.user else "") + self.host]


class Connection:
    """Runs commands on a target with the system ``ssh`` (batch mode: never a prompt)."""

    def __init__(self, target: Target, ssh_config: str | None = None, timeout: float = 3600):
        self.target, self.timeout = target, timeout
        self.connected = False  # a command has run: a later 255 is not "cannot connect"
        self.base = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"] + \
            (["-F", ssh_config] if ssh_config else []) + target.ssh_args()

    def python(self, code: str, *args: str, stdin: bytes | None = None,
               timeout: float | None = None) -> bytes:
        """Run ``python -c code args`` on the target; returns stdout, or raises one line."""
        return self._run([self.target.python, "-B", "-c", code, *args], stdin, timeout)

    def script(self, path: str, *args: str) -> bytes:
        """Run ``python path args`` on the target (its folder first on ``sys.path``)."""
        return self._run([self.target.python, "-B", path, *args], None, None)

    def _run(self, argv: list[str], stdin: bytes | None, timeout: float | None) -> bytes:
        cmd = shlex.join(argv)
        try:
            p = subprocess.run(self.base + ["--", cmd], input=stdin, capture_output=True,
                               timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"{self.target.device_id}: no answer in "
                                 f"{timeout or self.timeout:.0f} s; stopped.") from None
        except FileNotFoundError:
            raise RuntimeFailure("No ssh client on this machine: install OpenSSH "
                                 "(apt-get install openssh-client).") from None
        if p.returncode != 0:
            raise RuntimeFailure(self._why(p.returncode, p.stderr.decode(errors="replace")))
        self.connected = True
        return p.stdout

    def _why(self, code: int, stderr: str) -> str:
        last = (stderr.strip().splitlines() or [f"exit status {code}"])[-1][:240]
        dev = self.target.device_id
        if code == 255 and self.connected:  # ssh says 255 for a remote end killed by a signal
            return f"The agent on {dev} was killed, or the connection dropped: {last}"
        if code == 255:
            return f"Cannot connect to {dev}: {last}"
        if code == 127 or "not found" in last:
            return (f"No Python at {self.target.python!r} on {dev}: {last}; give its path, "
                    f"e.g. ssh://{dev}/usr/bin/python3.")
        if code in (137, -9) or code < 0:
            return f"The agent on {dev} was killed (exit {code}): {last}"
        if "No space left" in stderr:
            return f"{dev} has no space left in its temporary folder: {last}"
        return f"{dev}: {last}"


def _tar(files: dict[str, Path | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, src in files.items():
            data = src if isinstance(src, bytes) else Path(src).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _stage(artifacts, settings: BenchSettings, data: EvalData | None, repeat: int):
    """The files the device gets: the agent, the artifacts, their prepared inputs, job.json."""
    files = {"agent.py": Path(agent.__file__), "timing.py": Path(timing.__file__)}
    jobs, manifests = [], []
    for i, a in enumerate(artifacts):
        m = artifact_manifest(a, settings.preprocess)
        manifests.append(m)
        images = data.images if data is not None else None
        lat = images[:max(settings.batch_sizes)] if images is not None and len(images) else \
            np.random.default_rng(0).integers(0, 256, (1, *m.preprocessing.size,
                                                       m.preprocessing.channels), np.uint8)
        files[f"in-{i}.npy"] = _npy(prepare(lat, m))
        job = {"file": f"a{i}{Path(a).suffix}", "runtime": settings.runtime or runtime_for(a),
               "latency_input": f"in-{i}.npy", "batch_sizes": list(settings.batch_sizes),
               "threads": settings.threads.count if settings.threads.mode == "fixed"
               else settings.threads.mode,
               "options": {"device": settings.device,
                           "session_options": (m.conversion or {}).get("session_options")}}
        if images is not None:
            files[f"eval-{i}.npy"] = _npy(prepare(images, m))
            job["eval_input"] = f"eval-{i}.npy"
        files[job["file"]] = Path(a)
        jobs.append(job)
    files["job.json"] = json.dumps({"artifacts": jobs, "repeat": repeat,
                                    "measurement": settings.measurement.to_dict(),
                                    "eval_batch_size": settings.eval_batch_size}).encode()
    return files, manifests


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def run_on(target: Target, artifacts, settings: BenchSettings, data: EvalData | None = None,
           report_dir: str | Path = ".", repeat: int = 1,
           ssh_config: str | None = None) -> tuple[list[BenchRow], dict, dict]:
    """Benchmark ``artifacts`` on ``target`` over SSH; returns (rows, the device's info,
    ``{artifact index: probabilities on data.images}``).

    Raises:
        RuntimeFailure: the connection, the Python or the agent failed (one line); nothing
            is left on the device.
    """
    conn = Connection(target, ssh_config)
    files, manifests = _stage(artifacts, settings, data, repeat)
    folder = conn.python(_MKDIR, timeout=60).decode().strip()
    try:
        conn.python(_UNTAR, folder, stdin=_tar(files))
        conn.script(folder + "/agent.py", folder)
        with tempfile.TemporaryDirectory() as d:
            tarfile.open(fileobj=io.BytesIO(conn.python(_TAR, folder + "/out"))).extractall(d)
            out = Path(d) / "out"
            result = json.loads((out / "result.json").read_text())
            raws = {i: np.load(out / f"raw-{i}.npy") for i in range(len(artifacts))
                    if (out / f"raw-{i}.npy").exists()}
    finally:
        try:
            conn.python(_RMTREE, folder, timeout=120)
        except RuntimeFailure:
            pass  # the connection is gone; the folder is in the device's temporary folder
    probs = {i: postprocess(raw, manifests[i]) for i, raw in raws.items()}
    rows = [r for i, a in enumerate(artifacts)
            for r in _rows(i, a, manifests[i], result, probs.get(i), settings, data, target,
                           report_dir)]
    return rows, result["device"], probs


def _rows(i, artifact, manifest, result, probs, settings: BenchSettings, data, target,
          report_dir) -> list[BenchRow]:
    """Rows of artifact ``i`` from the agent's answers: accuracy and parity from its
    outputs, latency (pooled over repeats, with the spread between them) from its timings."""
    runs = [r for r in result["results"] if r["index"] == i]
    rel = os.path.relpath(artifact, report_dir)  # as local rows name their artifact
    base = BenchRow(format=manifest.format, runtime=settings.runtime or runtime_for(artifact),
                    device=settings.device, requested_device=settings.device, artifact=rel,
                    size_bytes=Path(artifact).stat().st_size, device_id=target.device_id)
    errors = [r["error"] for r in runs if "error" in r]
    if errors or not runs:
        return failed_rows(errors[0] if errors else "the agent gave no answer",
                           settings.batch_sizes, **{k: getattr(base, k) for k in (
                               "format", "runtime", "artifact", "size_bytes", "device_id")})
    first = runs[0]
    dev = result["device"] or {}
    what = f" ({first['providers'][0]})" if first.get("providers") else ""
    base = base.replace(providers=first["providers"], threads=first["threads"],
                        ran_on=f"{get_runtime_class(base.runtime).label}{what} on "
                               f"{target.device_id} over SSH: {dev.get('cpu', 'its CPU')} "
                               f"({dev.get('cores', '?')} cores)",
                        threads_default=first["threads_default"], load_ms=first["load_ms"],
                        thread_sweep={"threads": first["threads"], "p50_ms": first["thread_sweep"],
                                      "batch_size": settings.batch_sizes[0]}
                        if first.get("thread_sweep") else None,
                        runtime_details={"device": result["device"], "library": first["library"]})
    if probs is not None and data is not None:
        if data.labels is not None:
            base.accuracy = float((probs.argmax(1) == data.labels).mean())
        if data.reference is not None:
            p = compare(data.reference, probs, data.labels)
            for key in ("accuracy_delta", "top1_agreement", "max_abs_diff", "mean_abs_diff",
                        "kl_divergence", "per_class_accuracy_delta", "parity_counts"):
                setattr(base, key, p.get(key))
    rows = []
    for b in settings.batch_sizes:
        per_run = [np.asarray(r["latency"][str(b)]["samples_ms"]) for r in runs]
        stats = LatencyStats.from_samples(np.concatenate(per_run), b,
                                          first["latency"][str(b)]["first_ms"])
        lat = {k: v for k, v in stats.to_dict().items() if k not in ("batch_size", "throughput")}
        if len(per_run) > 1:
            lat["repeats"] = spread([np.median(s) for s in per_run])
        rows.append(base.replace(batch_size=b, latency_ms=lat, status="ok",
                                 throughput_ips=round(stats.throughput, 2)))
    return rows
