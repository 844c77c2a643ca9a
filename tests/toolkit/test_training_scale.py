"""Training at scale in the toolkit: precision auto picks by the hardware it is told about
(bf16 on AMX/AVX512-BF16 CPUs: the flags are given, not read from this machine), and a
transfer model's base features are cached on disk and invalidated by what changes them."""

from __future__ import annotations

import numpy as np
import pytest


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


@pytest.mark.slow
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
