"""Benchmark on a device over SSH: an OpenSSH server started here on 127.0.0.1 (a throwaway
key, a free port), whose Python is a virtual environment with only numpy and the runtimes
(no TensorFlow, no edgeproof), linked from this machine's installed distributions: no
network. The device's rows match a local run (same answers, same accuracy); each failure
(no connection, no Python, a killed agent, a full disk, a missing runtime) is one line;
and the device's temporary and cache folders are left as they were found, even when the
agent wrote scratch files there and then failed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from edgeproof.bench.one_artifact import bench_artifact
from edgeproof.bench.remote import Target, run_on
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.errors import RuntimeFailure, UsageError
from tests.helpers import run_cli

pytestmark = pytest.mark.slow
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# What the device can import: the runtimes (by import name) and what they require.
DEVICE_IMPORTS = ("numpy", "ai_edge_litert", "onnxruntime")
FAST = ["--min-runs", "5", "--min-seconds", "0.05", "--warmup-runs", "1",
        "--warmup-seconds", "0", "--threads", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _requirement_closure(imports) -> list[metadata.Distribution]:
    """The installed distributions that provide ``imports``, and everything they require
    (markers evaluated, extras left out)."""
    from packaging.requirements import Requirement

    owners = metadata.packages_distributions()
    todo = [name for imp in imports for name in owners[imp]]
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement this machine lacks: the device lacks it too
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


@pytest.fixture(scope="module")
def device_python(tmp_path_factory) -> Path:
    """A venv with only numpy and the runtimes: what a board has. Its packages are this
    machine's installed ones (linked into one folder a .pth file names), so nothing is
    downloaded and the device runs the very runtime versions the host compares against."""
    root = tmp_path_factory.mktemp("device")
    venv, site = root / "venv", root / "site"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site.mkdir()
    for dist in _requirement_closure(DEVICE_IMPORTS):
        base = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if (base / top).exists() and not (site / top).exists():
                (site / top).symlink_to(base / top)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    (Path(purelib.stdout.strip()) / "device.pth").write_text(f"{site}\n")
    for mod in DEVICE_IMPORTS:
        got = subprocess.run([str(py), "-c", f"import {mod}"], capture_output=True, text=True)
        assert got.returncode == 0, f"the device venv cannot import {mod}: {got.stderr[-500:]}"
    got = subprocess.run([str(py), "-c", "import tensorflow"], capture_output=True)
    assert got.returncode != 0, "the device venv must not have TensorFlow"
    return py


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1:PORT for the current user, and an ssh config naming it."""
    if not Path(SSHD).exists():
        pytest.skip("no OpenSSH server (apt-get install openssh-server; .ci/run does)")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    port, user = _free_port(), os.environ.get("USER") or subprocess.run(
        ["id", "-un"], capture_output=True, text=True).stdout.strip()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n")
    (d / "ssh_config").write_text(
        f"Host edgetest\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  IdentityFile {d / 'client'}\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=open(d / "log", "w"))
    for _ in range(50):
        if subprocess.run(["ssh", "-F", str(d / "ssh_config"), "-o", "BatchMode=yes",
                           "edgetest", "true"], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.skip(f"sshd did not start: {(d / 'log').read_text()[-300:]}")
    yield d / "ssh_config"
    proc.kill()


def _wrapper(tmp_path, python: Path, name: str, body: str) -> str:
    """A 'python' for the target: a script that sets up a condition, then runs ``python``."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\nexec {python} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def _leftovers(*folders: Path) -> list[str]:
    """Everything under ``folders`` (each was empty before the run)."""
    return sorted(str(p) for d in folders for p in d.rglob("*"))


@pytest.fixture
def device_tmp(tmp_path) -> Path:
    d = tmp_path / "device-tmp"
    d.mkdir()
    return d


def test_the_device_answers_like_this_machine(sshd, device_python, tiny_exports, tiny_dataset,
                                              tiny_reference, tmp_path, device_tmp):
    python = _wrapper(tmp_path, device_python, "py", f"export TMPDIR={device_tmp}")
    artifacts = [tiny_exports["tflite-int8"], tiny_exports["onnx-fp32"]]
    data = EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference)
    settings = BenchSettings(threads="1")
    rows, device, probs = run_on(Target.parse(f"ssh://edgetest{python}"), artifacts, settings,
                                 data, tmp_path, ssh_config=str(sshd))
    versions = device["versions"]  # the device's distribution: onnxruntime or its -gpu build
    assert (versions.get("onnxruntime") or versions.get("onnxruntime-gpu")) and \
        "tensorflow" not in versions
    for i, a in enumerate(artifacts):
        local, local_probs = bench_artifact(a, settings.replace(latency=False), data, tmp_path)
        assert rows[i].ok and rows[i].device_id == "edgetest"
        assert rows[i].accuracy == local.accuracy
        assert rows[i].top1_agreement == local.top1_agreement
        np.testing.assert_allclose(probs[i], local_probs, atol=1e-6)
        assert rows[i].latency_ms["p50_ci"][0] <= rows[i].p50 <= rows[i].latency_ms["p50_ci"][1]
    assert _leftovers(device_tmp) == []


def test_one_table_with_both_devices(sshd, device_python, tiny_exports, tmp_path):
    out = tmp_path / "report.json"
    r = run_cli("bench", tiny_exports["tflite-int8"], tiny_exports["onnx-fp32"],
                "--dataset", "digits", "--limit", "60", "--reference", tiny_exports["keras"],
                "--on", "local", "--on", f"ssh://edgetest{device_python}",
                "--ssh-config", sshd, "--json", out, *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    by = {(row["format"], row["device_id"]): row for row in report["results"]}
    assert {d for _, d in by} == {"local", "edgetest"}
    for fmt in ("tflite-int8", "onnx-fp32"):
        assert by[(fmt, "local")]["accuracy"] == by[(fmt, "edgetest")]["accuracy"]
    assert set(report["recommendations"]) == {"local", "edgetest"}
    assert "edgetest" in report["devices"] and "device" in r.stdout


@pytest.mark.parametrize("case,body,needle", [
    ("no python", None, "No Python at"),
    ("killed agent", 'case "$*" in *agent.py*) kill -9 $$;; esac', "was killed"),
    ("full disk", "ulimit -f 1", "File too large"),
])
def test_a_failure_is_one_line_and_leaves_nothing(sshd, device_python, tiny_exports, tmp_path,
                                                  device_tmp, case, body, needle):
    python = "/no/such/python" if body is None else _wrapper(
        tmp_path, device_python, "py", f"export TMPDIR={device_tmp}\n{body}")
    with pytest.raises(RuntimeFailure) as e:
        run_on(Target.parse(f"ssh://edgetest{python}"), [tiny_exports["tflite-int8"]],
               BenchSettings(threads="1"), None, tmp_path, ssh_config=str(sshd))
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert _leftovers(device_tmp) == []


def test_no_connection_is_a_failed_row_naming_the_host(tiny_exports, tmp_path):
    port = _free_port()  # nothing listens there
    r = run_cli("bench", tiny_exports["tflite-int8"], "--on", f"ssh://127.0.0.1:{port}",
                "--json", tmp_path / "r.json", *FAST)
    assert r.returncode == 1
    row = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert row["status"] == "failed" and "Cannot connect to 127.0.0.1" in row["error"]


def test_a_missing_runtime_says_what_to_install(sshd, device_python, tiny_exports, tmp_path,
                                                device_tmp):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "onnxruntime.py").write_text("raise ImportError(\"No module named 'onnxruntime'\","
                                            " name='onnxruntime')\n")
    python = _wrapper(tmp_path, device_python, "py",
                      f"export TMPDIR={device_tmp} PYTHONPATH={blocker}")
    rows, _, _ = run_on(Target.parse(f"ssh://edgetest{python}"),
                        [tiny_exports["onnx-fp32"], tiny_exports["tflite-int8"]],
                        BenchSettings(threads="1"), None, tmp_path, ssh_config=str(sshd))
    assert not rows[0].ok and "pip install onnxruntime" in rows[0].error
    assert rows[1].ok  # the other runtime is there
    assert _leftovers(device_tmp) == []


# A sitecustomize for the device's Python: at the exit of every agent process (the agent
# and each per-artifact process) it writes a scratch file where a runtime would (into
# tempfile's folder, as ONNX Runtime writes its .ses file, and into the cache folder),
# logs where each went, and with FAIL makes the agent itself exit with an error.
TRACES = """import atexit, os, sys, tempfile

def _leave_traces():
    if not (sys.argv and sys.argv[0].endswith("agent.py")):
        return
    for d in (tempfile.gettempdir(), os.environ["XDG_CACHE_HOME"]):
        fd, path = tempfile.mkstemp(prefix="trace-", suffix=".ses", dir=d)
        os.close(fd)
        with open({log!r}, "a") as fh:
            fh.write(path + "\\n")
    if {fail!r} and "--one" not in sys.argv:
        os._exit(3)

atexit.register(_leave_traces)
"""


@pytest.mark.parametrize("fail", [False, True], ids=["agent ok", "agent fails"])
def test_the_device_is_left_as_it_was_found(sshd, device_python, tiny_exports, tmp_path,
                                            device_tmp, fail):
    """The agent's processes write scratch and cache files (``TRACES``); they land inside
    its work folder, which goes, so the device's temporary and cache folders are left
    exactly as found (here: empty), whether the agent succeeds or fails."""
    cache, hook, log = tmp_path / "device-cache", tmp_path / "hook", tmp_path / "traces.log"
    cache.mkdir()
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TRACES.format(log=str(log), fail=fail))
    python = _wrapper(tmp_path, device_python, "py", f"export TMPDIR={device_tmp} "
                      f"XDG_CACHE_HOME={cache} PYTHONPATH={hook}")
    assert _leftovers(device_tmp, cache) == []
    target, artifacts = Target.parse(f"ssh://edgetest{python}"), \
        [tiny_exports["tflite-int8"], tiny_exports["onnx-fp32"]]
    if fail:
        with pytest.raises(RuntimeFailure, match="exit status 3"):
            run_on(target, artifacts, BenchSettings(threads="1"), None, tmp_path,
                   ssh_config=str(sshd))
    else:
        rows, _, _ = run_on(target, artifacts, BenchSettings(threads="1"), None, tmp_path,
                            ssh_config=str(sshd))
        assert all(r.ok for r in rows), [r.error for r in rows]
    traces = log.read_text().split()
    # the agent and one process per artifact each wrote two: the hook really ran
    assert len(traces) == 2 * (1 + len(artifacts)), traces
    work = {Path(t).relative_to(device_tmp).parts[0] for t in traces}
    assert len(work) == 1 and next(iter(work)).startswith("edgeproof-"), traces
    assert _leftovers(device_tmp, cache) == []


@pytest.mark.parametrize("spec", ["ssh://", "http://host", "ssh://host:port"])
def test_a_malformed_target_is_a_usage_error(spec):
    with pytest.raises(UsageError):
        Target.parse(spec)
