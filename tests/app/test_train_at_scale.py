"""Training at scale, end to end: a model trained in bfloat16 exports with the usual parity
(the float32 copy the exporters get), and multi-worker training on tf.distribute with two
local processes (TF_CONFIG; only the chief writes; a killed worker's cluster restarts with
--resume and finishes). Every test trains: all slow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

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


def _workers(out, epochs: int, resume: bool = False):
    ports = _free_ports(2)
    hosts = [f"127.0.0.1:{p}" for p in ports]
    args = [sys.executable, "-m", "edgeproof", "train", "--dataset", "digits", "--model",
            "small_cnn", "--image-size", "16", "--epochs", str(epochs), "--batch-size", "64",
            "--strategy", "multiworker", "--precision", "float32", "--out", str(out), "--quiet"]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                                     "task": {"type": "worker", "index": i}}),
                   EDGEPROOF_COLLECTIVE_TIMEOUT="60")
        procs.append(subprocess.Popen(args + (["--resume"] if resume else []), env=env,
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
    procs = _workers(out, epochs=4)
    history, deadline = out / "history.csv", time.monotonic() + 300
    while time.monotonic() < deadline and procs[0].poll() is None and not (
            history.exists() and len(history.read_text().splitlines()) >= 2):
        time.sleep(0.02)  # until the chief has written epoch 1's row
    procs[1].kill()  # epoch 1's row is written: a worker dies in epoch 2
    procs[0].wait(timeout=300)  # its peer fails (collective timeout) or finishes waiting
    assert procs[1].wait() != 0
    # As TensorFlow's fault-tolerance guide prescribes, the cluster restarts with the same
    # TF_CONFIG (--resume: BackupAndRestore continues from the last completed epoch).
    a, b = _hashes(_workers(out, epochs=4, resume=True))
    assert a == b
    train = json.loads((out / "train.json").read_text())
    assert train["epochs_run"] >= 1 and train["resumed_at"] >= 1
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 4
