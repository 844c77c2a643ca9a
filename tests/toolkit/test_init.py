"""`--init pytorch`: Conv2D and Dense weights and biases drawn from PyTorch's default range
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded; `keras` leaves the model as built; the run
records which."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.errors import UsageError
from edgeproof.toolkit.models import create_model
from edgeproof.toolkit.models.init import apply_init, pytorch_bound
from tests.helpers import run_cli


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_pytorch_draws_every_conv_and_dense_in_its_fan_in_range():
    model = create_model("lab_dropout_model5", 10, (32, 32, 3))
    names = apply_init(model, "pytorch", seed=0)
    layers = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert names == [layer.name for layer in layers] and len(names) >= 5
    for layer in layers:
        kernel, bias = (np.asarray(v) for v in (layer.kernel, layer.bias))
        bound = pytorch_bound(kernel.shape)
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        # A uniform draw fills its range: std bound/sqrt(3), not Glorot's (wider on convs).
        assert abs(kernel.std() - bound / np.sqrt(3)) < 0.05 * bound
        assert np.count_nonzero(bias) == bias.size  # PyTorch's biases are not zero


def test_the_draw_is_seeded_and_keras_changes_nothing():
    a, b = (create_model("small_cnn", 10, (32, 32, 1)) for _ in range(2))
    built = _weights(b)
    assert apply_init(b, "keras") == []
    assert all(np.array_equal(x, y) for x, y in zip(built, _weights(b)))
    apply_init(a, "pytorch", seed=3)
    apply_init(b, "pytorch", seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    apply_init(b, "pytorch", seed=4)
    assert not all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))


def test_an_unknown_scheme_is_refused():
    with pytest.raises(UsageError, match="not one of keras, pytorch"):
        apply_init(create_model("small_cnn", 10, (32, 32, 1)), "he")


@pytest.mark.slow
def test_train_records_the_init(tmp_path):
    proc = run_cli("train", "--dataset", "digits", "--image-size", "16", "--epochs", "1",
                   "--init", "pytorch", "--out", tmp_path / "run", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    train = json.loads((tmp_path / "run" / "train.json").read_text())
    assert train["init"] == "pytorch"
