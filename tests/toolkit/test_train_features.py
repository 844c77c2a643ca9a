"""Training in the toolkit: resume after an interrupt, class weights, augmentation, transfer
recipes, mixed precision and MirroredStrategy over two logical CPUs. Tests that train are
slow."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers import ROOT


class _Interrupt(Exception):
    pass


def _stop_after_first_epoch():
    from edgeproof.tfcompat import keras

    class Stop(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise _Interrupt()

    return Stop()


@pytest.mark.slow
def test_resume_continues_at_epoch_2(tiny_dataset, tmp_path):
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    cfg = TrainConfig(epochs=3, batch_size=128, verbose=0)
    model = create_model("small_cnn", tiny_dataset.num_classes, tiny_dataset.input_shape)
    with pytest.raises(_Interrupt):
        train_model(model, tiny_dataset, cfg, workdir=tmp_path,
                    callbacks=[_stop_after_first_epoch()])
    assert (tmp_path / "backup").exists()
    fresh = create_model("small_cnn", tiny_dataset.num_classes, tiny_dataset.input_shape)
    result = train_model(fresh, tiny_dataset, cfg, workdir=tmp_path, resume=True)
    assert result.epochs_run == 2  # epochs 2 and 3 only
    with open(tmp_path / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2]


def test_class_weights_balanced():
    from edgeproof.toolkit.train import class_weights

    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[1] > w[0] and w[2] == 1.0


@pytest.mark.slow
def test_augmented_training_with_class_weights(tiny_dataset):
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    model = create_model("lab_model1", tiny_dataset.num_classes, tiny_dataset.input_shape)
    r = train_model(model, tiny_dataset, TrainConfig(epochs=1, batch_size=128, verbose=0,
                                                     augment="lab9", class_weight="balanced"))
    assert r.epochs_run == 1 and np.isfinite(r.history["loss"][0])


def _rgb(n, size, seed=0):
    from edgeproof.manifest import Preprocessing
    from edgeproof.datasets import Dataset

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    y = np.arange(n) % 3
    return Dataset("rgb", ["a", "b", "c"], x, y, x[:6], y[:6], x[:6], y[:6],
                   Preprocessing(size=[size, size]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50_features", "resnet50_finetune"])
def test_transfer_recipes_train_random_init(name, tmp_path):
    from edgeproof.toolkit.models import create_model
    from edgeproof.toolkit.train import TrainConfig, train_model

    model = create_model(name, 3, (32, 32, 3), weights="none", fine_tune_layers=10)
    r = train_model(model, _rgb(16, 32), TrainConfig(epochs=2, batch_size=8, verbose=0),
                    workdir=tmp_path)
    assert r.epochs_run == 2
    assert model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0).shape == (1, 3)
    if name.endswith("finetune"):
        base = model.get_layer("resnet50")
        assert sum(la.trainable for la in base.layers) == 10


def test_mixed_precision_keeps_float32_head():
    from edgeproof.toolkit.distribute import precision_policy
    from edgeproof.toolkit.models import create_model
    from edgeproof.tfcompat import keras

    with precision_policy("mixed_float16"):
        m = create_model("lab_model1", 10, (16, 16, 1))
        assert m.layers[1].compute_dtype == "float16"
        assert m.get_layer("probs").compute_dtype == "float32"
    assert keras().mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus():
    script = textwrap.dedent("""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from edgeproof.datasets import load_dataset
        from edgeproof.toolkit.distribute import make_strategy
        from edgeproof.toolkit.models import create_model
        from edgeproof.toolkit.train import TrainConfig, train_model
        ds = load_dataset("digits", image_size=16)
        s = make_strategy("mirrored")
        with s.scope():
            m = create_model("small_cnn", 10, ds.input_shape)
            r = train_model(m, ds, TrainConfig(epochs=1, batch_size=64, verbose=0,
                                               tensorboard=False))
        print("REPLICAS", s.num_replicas_in_sync, r.epochs_run)
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert "REPLICAS 2 1" in p.stdout, p.stderr[-2000:]
