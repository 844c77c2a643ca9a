"""The float rewrites before quantizing: each exact one leaves the float outputs where they
were (on lab models with random BatchNorm statistics, valid and same padding), a fold that
would be wrong is refused (a negative BatchNorm scale before max pooling) and would have
been caught, equalization evens out the ranges, bias correction removes the mean error of
int8 weights, and an integer export records what was done."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.export import prepare
from edgeproof.export.bias_correction import correct_biases, fake_quantize
from edgeproof.export.prepare import for_integer_export
from edgeproof.export.rewrites import _bn_affine, _folded_weights, chain, equalize, \
    exact_rewrites, fold_batchnorms, rebuild
from edgeproof.tfcompat import keras
from edgeproof.toolkit.models import create_model


def _random_bn(model, rng, negative: bool = False):
    """``model`` with random BatchNorm statistics (a model without BatchNorm is a mistake:
    every test using this would then check a fold of nothing)."""
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert bns, f"{model.name} has no BatchNormalization layer"
    for layer in bns:
        n = layer.weights[0].shape[0]
        gamma = rng.uniform(0.5, 2.0, n)
        if negative:
            gamma[0] = -1.0
        layer.set_weights([gamma, rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
                           rng.uniform(0.5, 2.0, n)])
    return model


def _diff(a, b, x) -> float:
    return float(np.abs(a.predict(x, verbose=0) - b.predict(x, verbose=0)).max())


def _bn_cnn(padding: str, shape=(16, 16, 3), classes: int = 4):
    """Conv-ReLU-BN twice, max pooling, Dense-ReLU-BN, softmax: the plain-Keras shape."""
    k = keras()
    inp = k.Input(shape)
    x = k.layers.Conv2D(8, 3, padding=padding, activation="relu")(inp)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.Conv2D(8, 3, padding=padding, activation="relu")(x)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Conv2D(16, 3, padding=padding, activation="relu")(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(16, activation="relu")(x)
    x = k.layers.BatchNormalization()(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax")(x))


@pytest.mark.parametrize("name,shape", [("lab_model7", (32, 32, 3)), ("lab_model3", (28, 28, 1)),
                                        ("lab_model6", (32, 32, 3))])
def test_folding_and_equalizing_lab_models_is_exact(name, shape, rng):
    model = _random_bn(create_model(name, 10, shape), rng)
    x = rng.uniform(0, 1, (8, *shape)).astype(np.float32)
    rewritten, record = exact_rewrites(model)
    assert record["fold_batchnorm"]["folded"] and record["equalize"]["pairs"]
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in rewritten.layers)
    assert _diff(model, rewritten, x) < 1e-5


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_batchnorm_after_the_activation_folds_exactly(padding, rng):
    model = _random_bn(_bn_cnn(padding), rng)
    x = rng.uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    folded, record = fold_batchnorms(model)
    assert len(record["folded"]) == 3 and not record["skipped"], record
    assert all(("shift kept" in f) == (padding == "same" and "dense" not in f)
               for f in record["folded"]), record["folded"]
    assert _diff(model, folded, x) < 1e-5


def test_a_negative_scale_before_max_pooling_is_not_folded_and_would_be_wrong(rng):
    model = _random_bn(create_model("lab_model3", 10, (28, 28, 1)), rng, negative=True)
    # The negated channel must be alive: a random init can leave conv1's channel 0 dead
    # after its ReLU (zero everywhere, so max and min pooling agree and nothing moves).
    w, b = model.get_layer("conv1").get_weights()
    b[0] = 1.0
    model.get_layer("conv1").set_weights([w, b])
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    folded, record = fold_batchnorms(model)
    assert folded is model and "negative scale" in next(iter(record["skipped"].values()))
    # The fold the guard refused, made anyway: max pooling of a negatively scaled channel
    # picks its minimum, so the outputs move and the export's float check would catch it.
    layers = chain(model)
    i = next(i for i, layer in enumerate(layers) if type(layer).__name__ == "BatchNormalization")
    j = next(j for j in range(i, len(layers)) if type(layers[j]).__name__ == "Conv2D")
    scale, shift = _bn_affine(layers[i])
    wrong = rebuild(model, layers, {layers[i].name},
                    {layers[j].name: _folded_weights(layers[j], scale, shift, 1)})
    assert _diff(model, wrong, x) > 10 * prepare.EXACT_TOLERANCE


def test_equalization_evens_out_the_ranges_and_keeps_the_function(rng):
    model = create_model("lab_model2", 10, (28, 28, 1))
    conv = model.get_layer("conv0")
    w, b = conv.get_weights()
    w[..., 0] *= 50.0  # one channel far wider than the others
    conv.set_weights([w, b])
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    eq, record = equalize(model)

    def spread(m):
        ranges = np.abs(m.get_layer("conv0").get_weights()[0]).reshape(-1, 32).max(axis=0)
        return ranges.max() / ranges.min()

    assert record["pairs"] and spread(eq) < spread(model) / 5
    assert _diff(model, eq, x) < 1e-5


def test_a_rewrite_that_moves_the_outputs_is_dropped(rng, monkeypatch):
    model = create_model("lab_model3", 10, (28, 28, 1))
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    other = create_model("lab_model3", 10, (28, 28, 1))  # different weights: not exact

    monkeypatch.setattr(prepare, "exact_rewrites", lambda m, steps: (other, {"fake": True}))
    got, record = for_integer_export(model, x, prepare.EXACT_STEPS)
    assert got is model and record["applied"] is False and "not exact" in record["why"]


def test_bias_correction_removes_the_mean_error_of_int8_weights(rng):
    k = keras()
    inp = k.Input((8, 8, 3))
    model = k.Model(inp, k.layers.Conv2D(4, 3, name="conv")(inp))
    w, b = model.get_layer("conv").get_weights()
    model.get_layer("conv").set_weights([w + 0.01, b])
    x = rng.uniform(0, 1, (64, 8, 8, 3)).astype(np.float32) + 0.5  # inputs with a mean
    corrected, record = correct_biases(model, x)
    assert record["layers"][0]["layer"] == "conv" and record["layers"][0]["max_shift"] > 0

    def quantized(m):  # the layer with its weights rounded to int8, as a runtime would
        q = k.models.clone_model(m)
        kern, bias = m.get_layer("conv").get_weights()
        q.get_layer("conv").set_weights([fake_quantize(kern), bias])
        return q

    reference = model.predict(x, verbose=0)
    before = np.abs((quantized(model).predict(x, verbose=0) - reference).mean(axis=(0, 1, 2)))
    after = np.abs((quantized(corrected).predict(x, verbose=0) - reference).mean(axis=(0, 1, 2)))
    assert after.max() < before.max() / 10


@pytest.mark.slow
def test_an_integer_export_records_its_rewrites(tiny_context, tiny_dataset, rng):
    """A model with three BatchNorms to fold (random statistics): the integer export folds
    them, checks the fold on its calibration images and records that it was exact."""
    from edgeproof.export.formats import export_model

    model = _random_bn(_bn_cnn("same", tiny_dataset.input_shape, tiny_dataset.num_classes), rng)
    art = export_model(model, "tflite-int8", tiny_context)
    record = art.manifest.conversion["exact_rewrites"]
    assert record["steps"] == ["fold_batchnorm", "equalize", "bias_correction"]
    assert len(record["fold_batchnorm"]["folded"]) == 3, record["fold_batchnorm"]
    assert record["applied"] is True, record  # the rewrite happened, and it was kept
    assert 0 <= record["max_abs_diff"] < prepare.EXACT_TOLERANCE, record
    x = tiny_context.calibration_float()[:16]
    rewritten, _ = exact_rewrites(model)
    assert _diff(model, rewritten, x) < prepare.EXACT_TOLERANCE  # exact, measured here too
    off = export_model(model, "tflite-int8", tiny_context, {"rewrites": "none"})
    assert off.manifest.conversion["exact_rewrites"]["steps"] == []
    assert "rewrites" not in off.manifest.options
