"""Benchmark on a device over SSH: an OpenSSH server started here on 127.0.0.1 (a throwaway
key, a free port), whose Python is a virtual environment with only numpy and the runtimes
(no TensorFlow, no edgeproof). The device's rows match a local run (same answers, same
accuracy), and each failure (no connection, no Python, a killed agent, a full disk, a
missing runtime) is one line and leaves nothing behind on the device."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
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
DEVICE_PACKAGES = ("numpy", "ai-edge-litert==2.3.0", "onnxruntime==1.31.1")
FAST = ["--min-runs", "5", "--min-seconds", "0.05", "--warmup-runs", "1",
        "--warmup-seconds", "0", "--threads", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def device_python(tmp_path_factory) -> Path:
    """A venv with only numpy and the runtimes: what a board has (skip when pip cannot)."""
    venv = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *DEVICE_PACKAGES],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip(f"cannot install the device's packages: {r.stderr.strip()[-300:]}")
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


def _leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("edgeproof-*"))


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
    assert device["versions"].get("onnxruntime") and "tensorflow" not in device["versions"]
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
    ("killed agent", 'case "$1" in */agent.py) kill -9 $$;; esac', "was killed"),
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


@pytest.mark.parametrize("spec", ["ssh://", "http://host", "ssh://host:port"])
def test_a_malformed_target_is_a_usage_error(spec):
    with pytest.raises(UsageError):
        Target.parse(spec)
