"""Training at scale: precision auto (bf16 on AMX/AVX512-BF16 CPUs), a bf16-trained model
exports with the usual parity, base features cached on disk, and multi-worker training
on tf.distribute with two local processes (TF_CONFIG, the chief writes, restart resumes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT


def test_precision_auto_picks_by_hardware_and_says_why():
    from edgeproof.toolkit.distribute import resolve_precision

    assert resolve_precision("auto", flags={"amx_bf16", "avx512f"}, gpu=False)[0] == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx512_bf16"}, gpu=False)[0] == "mixed_bfloat16"
    assert resolve_precision("auto", flags={"avx2"}, gpu=False) == (
        "float32", "no GPU of compute capability 7.0 or more, no bfloat16 CPU units")
    policy, why = resolve_precision("mixed", flags={"amx_bf16"}, gpu=("A100", (8, 0)))
    assert policy == "mixed_float16" and "8.0" in why  # a tensor-core GPU first
    assert resolve_precision("auto", flags=set(), gpu=("K80", (3, 7)))[0] == "float32"
    assert resolve_precision("float32") == ("float32", "asked for")


def test_bf16_trained_model_exports_with_the_usual_parity(tiny_dataset, tmp_path):
    from edgeproof.bench.core import bench_artifact
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import calibration_context
    from edgeproof.export.formats import export_model
    from edgeproof.pipeline import reference_probs
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
        row, _ = bench_artifact(path, images=tiny_dataset.x_test, labels=tiny_dataset.y_test,
                                reference=ref, latency=False)
        assert row["status"] == "ok" and row["top1_agreement"] >= min_agreement, row


def test_base_features_are_cached_and_invalidated(tiny_dataset, tmp_path, monkeypatch):
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit import train as train_mod
    from edgeproof.toolkit.distribute import precision_policy
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    monkeypatch.setenv("EDGEPROOF_CACHE", str(tmp_path / "cache"))
    calls = []
    real = train_mod.extract_features
    monkeypatch.setattr(train_mod, "extract_features",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    ds = tiny_dataset
    ds_small = type(ds)(ds.name, ds.class_names, ds.x_train[:200], ds.y_train[:200],
                        ds.x_val[:60], ds.y_val[:60], ds.x_test, ds.y_test, ds.preprocessing)

    def run(dataset, policy="float32", seed=0):
        set_seed(seed)  # the same random base weights each time: the same key
        with precision_policy(policy):
            model = create_model("resnet50_features", 10, (32, 32, 1), weights="none")
            cfg = TrainConfig(epochs=1, batch_size=32, verbose=0)
            train_model(model, dataset, cfg)
        return cfg.feature_cache

    big = type(ds)(**{**ds_small.__dict__, "x_train": np.repeat(np.repeat(
        ds_small.x_train, 2, 1), 2, 2), "x_val": np.repeat(np.repeat(ds_small.x_val, 2, 1), 2, 2)})
    assert run(big) == "miss" and len(calls) == 2  # train and val computed
    assert run(big) == "hit" and len(calls) == 2  # reused: nothing computed
    changed = type(ds)(**{**big.__dict__, "preprocessing": big.preprocessing.override(
        {"scale": 1.0})})
    assert run(changed) == "miss" and len(calls) == 4  # other pixels in, other features out
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 4
    # bf16 features are their own entries, stored so that a hit reads back (it once
    # came back as raw bytes TensorFlow could not take).
    assert run(big, "mixed_bfloat16") == "miss" and len(calls) == 6
    assert run(big, "mixed_bfloat16") == "hit" and len(calls) == 6
    assert run(big, seed=1) == "miss" and len(calls) == 8  # other base weights
    x_train, x_val = big.x_train.copy(), big.x_val.copy()
    x_train[0, 0, 0] ^= 1
    x_val[0, 0, 0] ^= 1
    edited = type(ds)(**{**big.__dict__, "x_train": x_train, "x_val": x_val})
    assert run(edited) == "miss" and len(calls) == 10  # other images: the fingerprint


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
    history, deadline = out / "history.csv", time.time() + 300
    while time.time() < deadline and not (history.exists() and
                                          len(history.read_text().splitlines()) >= 2):
        time.sleep(0.2)  # epoch 1 done
    time.sleep(0.5)  # into epoch 2
    procs[1].kill()  # a worker dies mid-epoch
    procs[0].wait(timeout=300)  # its peer fails (collective timeout) or finishes waiting
    assert procs[1].wait() != 0
    # As TensorFlow's fault-tolerance guide prescribes, the cluster restarts with the same
    # TF_CONFIG (--resume: BackupAndRestore continues from the last completed epoch).
    a, b = _hashes(_workers(out, epochs=4, resume=True))
    assert a == b
    train = json.loads((out / "train.json").read_text())
    assert train["epochs_run"] >= 1 and train["resumed_at"] >= 1
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 4
