"""Training at scale, end to end: a model trained in bfloat16 exports with the usual parity
(the float32 copy the exporters get), and multi-worker training on tf.distribute with two
local processes (TF_CONFIG; only the chief writes; a killed worker's cluster restarts with
--resume and finishes). Every test trains: all slow.

The killed worker is killed where it paused (tests/pause_in_training.py writes a marker
file mid-epoch 2 and waits), so the kill lands on that step on any machine, not on a
clock or a race with the other worker's history row."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_bf16_trained_model_exports_with_the_usual_parity(tiny_dataset, tmp_path):
    from edgeproof.bench.one_artifact import bench_artifact
    from edgeproof.bench.settings import BenchSettings, EvalData
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import calibration_context
    from edgeproof.export.formats import export_model
    from edgeproof.app.reference_answers import reference_probs
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit.distribute import float32_copy, precision_policy
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    set_seed(0)
    with precision_policy("mixed_bfloat16"):
        model = create_model("small_cnn", 10, tiny_dataset.input_shape)
        assert model.layers[1].compute_dtype == "bfloat16"
        assert model.get_layer("probs").compute_dtype == "float32"  # the head stays float32
        train_model(model, tiny_dataset, TrainConfig(epochs=3, batch_size=64, verbose=0))
    model = float32_copy(model)
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    ref = reference_probs(model, tiny_dataset)
    assert (ref.argmax(1) == tiny_dataset.y_test).mean() > 0.5
    ctx = calibration_context(tiny_dataset, 100, 0, {"model_name": "bf16"})
    for fmt, min_agreement in (("tflite-int8", 0.95), ("onnx-fp32", 0.999)):
        path = write_artifact(export_model(model, fmt, ctx), tmp_path, f"bf16-{fmt}")
        row, _ = bench_artifact(path, BenchSettings(latency=False),
                                EvalData(tiny_dataset.x_test, tiny_dataset.y_test, ref))
        assert row.ok and row.top1_agreement >= min_agreement, row


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PAUSE_SCRIPT = Path(__file__).resolve().parents[1] / "pause_in_training.py"


def _workers(out, epochs: int, resume: bool = False, pause_second: Path | None = None):
    """Two local workers training into ``out``; with ``pause_second`` the second worker
    pauses at epoch 2's second batch and writes that marker file."""
    ports = _free_ports(2)
    hosts = [f"127.0.0.1:{p}" for p in ports]
    args = ["train", "--dataset", "digits", "--model",
            "small_cnn", "--image-size", "16", "--epochs", str(epochs), "--batch-size", "64",
            "--strategy", "multiworker", "--precision", "float32", "--out", str(out), "--quiet"]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                                     "task": {"type": "worker", "index": i}}),
                   EDGEPROOF_COLLECTIVE_TIMEOUT="60")
        head = [sys.executable, "-m", "edgeproof"]
        if pause_second is not None and i == 1:
            head = [sys.executable, str(PAUSE_SCRIPT), "1", "1", str(pause_second)]
        procs.append(subprocess.Popen(head + args + (["--resume"] if resume else []), env=env,
                                      cwd=out.parent, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def _hashes(procs) -> list[str]:
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (so, se) in zip(procs, outs):
        assert p.returncode == 0, se[-3000:]
    return [next(ln.split()[-1] for ln in so.splitlines() if ln.startswith("weights sha256"))
            for so, _ in outs]


@pytest.mark.timeout(900)
def test_two_workers_train_into_one_folder_and_only_the_chief_writes(tmp_path):
    out = tmp_path / "mw"
    a, b = _hashes(_workers(out, epochs=2))
    assert a == b  # the same weights on both workers
    assert sorted(p.name for p in out.glob("*.keras")) == ["model.keras"]
    train = json.loads((out / "train.json").read_text())
    assert train["strategy"] == {"name": "multiworker", "workers": 2, "replicas": 2}
    assert train["epochs_run"] == 2 and train["weights_sha256"] == a
    assert not list(out.rglob("workertemp*"))  # the other worker's copies are gone


@pytest.mark.timeout(900)
def test_a_killed_worker_restarts_and_the_run_finishes(tmp_path):
    out = tmp_path / "mw"
    marker = tmp_path / "paused"
    procs = _workers(out, epochs=4, pause_second=marker)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and procs[1].poll() is None and not marker.exists():
        time.sleep(0.02)  # until the second worker has paused in epoch 2
    assert marker.exists(), "the second worker never reached its pause"
    procs[1].kill()  # a worker dies in epoch 2
    assert procs[1].wait() == -signal.SIGKILL
    # Its peer cannot finish epoch 2 without it: it fails (the collective times out).
    assert procs[0].wait(timeout=300) != 0
    history = out / "history.csv"
    assert len(history.read_text().splitlines()) == 1 + 1  # only epoch 1 was completed
    # As TensorFlow's fault-tolerance guide prescribes, the cluster restarts with the same
    # TF_CONFIG (--resume: BackupAndRestore continues from the last completed epoch).
    a, b = _hashes(_workers(out, epochs=4, resume=True))
    assert a == b
    train = json.loads((out / "train.json").read_text())
    assert train["resumed_at"] == 1, train  # 0-based: epoch 2, the one the kill interrupted
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 4
