"""`edgeproof optimize`: the ladders and their gate, honest selection (test images never
reach calibration or choice), the ladder keeping a planted sensitive layer in float
(asserting only what holds on any CPU: int8 kernels differ with and without VNNI, so how
many layers must stay float is not fixed), outputs, and a gate nothing meets. Tests that
export or train are slow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.app.ladder import FLOAT_KS, ladders
from edgeproof.app.optimize import OptimizeConfig
from edgeproof.bench.gate import Gate
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def marked_npz(tiny_dataset, tmp_path_factory):
    """The tiny digits as an .npz whose test images carry a marker (a white first row)
    that no train or validation image has."""
    ds = tiny_dataset
    x_train = np.concatenate([ds.x_train, ds.x_val])
    assert not (x_train[:, 0] == 255).all(axis=(1, 2)).any()
    x_test = ds.x_test.copy()
    x_test[:, 0] = 255
    path = tmp_path_factory.mktemp("npz") / "digits16.npz"
    np.savez(path, x_train=x_train, y_train=np.concatenate([ds.y_train, ds.y_val]),
             x_test=x_test, y_test=ds.y_test)
    return path


@pytest.fixture(scope="module")
def tiny_keras(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="module")
def sensitive_keras(tiny_dataset, tmp_path_factory):
    """A tiny CNN with one layer int8 cannot hold: conv1's channel 7 duplicates channel 6,
    and every filter of the layer named "sensitive" gets +1000 on input channel 6 and -1000
    on channel 7. In float the pair cancels exactly (the model is unchanged); in int8 each
    output channel's weight scale grows ~10^4 times, so its real weights round to zero.
    conv1 ends in tanh, which is not positively homogeneous, so cross-layer equalization
    (an exact rewrite every integer rung gets) cannot rebalance the pair: only keeping the
    layer float repairs it."""
    from edgeproof.tfcompat import keras, set_seed

    k, ds = keras(), tiny_dataset
    set_seed(0)
    inp = k.Input(ds.input_shape)
    x = k.layers.Conv2D(8, 3, activation="tanh", name="conv1")(inp)
    x = k.layers.Conv2D(16, 3, activation="relu", name="sensitive")(x)
    x = k.layers.Flatten()(k.layers.MaxPooling2D()(x))
    model = k.Model(inp, k.layers.Dense(10, activation="softmax", name="probs")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    x_train = ds.x_train.astype("float32") / 255.0
    model.fit(x_train, ds.y_train, epochs=4, batch_size=64, verbose=0)
    conv1 = model.get_layer("conv1")
    w1, b1 = conv1.get_weights()
    w1[..., 7], b1[7] = w1[..., 6], b1[6]
    conv1.set_weights([w1, b1])
    conv1.trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, ds.y_train, epochs=2, batch_size=64, verbose=0)  # adapt to the copy
    sens = model.get_layer("sensitive")
    w2, b2 = sens.get_weights()
    w2[:, :, 6, :] += 1000.0
    w2[:, :, 7, :] -= 1000.0
    sens.set_weights([w2, b2])
    path = tmp_path_factory.mktemp("sensitive") / "sensitive.keras"
    model.save(path)
    return path


def test_the_ladders_climb_from_cheap_to_float_fallbacks():
    cfg = OptimizeConfig("m.keras", "digits", "out", calib_size=100, large_calib_size=300)
    lad = ladders(cfg)
    assert list(lad) == ["float", "tflite-int", "onnx-int", "onnx-nncf", "executorch-int",
                         "openvino-int"]
    assert [r.keep_float for r in lad["onnx-int"] if r.keep_float] == list(FLOAT_KS)
    labels = [r.label for r in lad["tflite-int"]]
    assert labels[:4] == ["tflite-int8, calibration 100", "tflite-int8, no bias correction",
                          "tflite-int8, calibration 300", "tflite-int8, 1 layer(s) float"]
    assert "qat" in labels[-3] and labels[-1].startswith("tflite-int16x8")  # slow rungs last
    assert "qat" not in " ".join(r.label for r in ladders(OptimizeConfig(
        "m.keras", "digits", "out", allow_qat=False))["tflite-int"])
    only = ladders(OptimizeConfig("m.keras", "digits", "out", formats=("onnx-int8",)))
    assert list(only) == ["onnx-int", "onnx-nncf"]  # NNCF's default PTQ is an onnx-int8 too


def test_the_default_gate_is_the_named_constants():
    from edgeproof.cli.common import gate_of
    from edgeproof.cli.main import build_parser

    cfg = OptimizeConfig("m.keras", "digits", "out")
    # the limits are the defaults; the search judges each rung corrected for all it can try
    # (a Keras reference's ExecuTorch rungs are skipped before the search: not counted)
    assert cfg.rungs == sum(not r.skip for v in ladders(cfg).values() for r in v) > 1
    assert cfg.gate == Gate().for_candidates(cfg.rungs) and cfg.gate.compared == cfg.rungs
    args = build_parser().parse_args(["optimize", "m.keras", "--dataset", "d", "--out", "o"])
    assert gate_of(args) == Gate()
    assert (args.confidence, args.gate_mode, args.val_size) == (0.95, "bound", None)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,kept_as", [("tflite-int8", "layer(s) float"),
                                         ("onnx-int8", "node(s) float")])
def test_the_ladder_keeps_the_sensitive_layer_in_float(sensitive_keras, fmt, kept_as, tmp_path):
    """What must hold on any CPU: the ladder passes, at a float-fallback rung that keeps
    the planted layer float, and no rung before the first one that keeps layers float passes. (How many
    layers must stay float depends on the int8 kernels: ONNX Runtime's differ with and
    without VNNI, so the passing k is not asserted.)"""
    from edgeproof.app.optimize import optimize

    # the ladder's mechanics, not the gate's statistics: 360 validation images cannot
    # prove 99% over 7+ rungs (app.sizing), so decide on the point figures as before
    result = optimize(OptimizeConfig(str(sensitive_keras), "digits", str(tmp_path / "o"),
                                     formats=(fmt,), calib_size=100, large_calib_size=300,
                                     gate_mode="point"))
    rec = result["recommendation"]
    assert rec is not None, [(c["rung"], c.get("reason")) for c in result["candidates"]]
    # the integer ladder of this format (onnx-int8 has NNCF's rung beside it, its own family)
    cands = [c for c in result["candidates"] if c["family"] == fmt.split("-")[0] + "-int"]
    first_fallback = next(i for i, c in enumerate(cands) if kept_as in c["rung"])
    assert not any(c["passed"] for c in cands[:first_fallback]), cands
    passing = next(c for c in cands if c["rung"] == rec["rung"])
    assert passing["passed"] and kept_as in rec["rung"], rec["rung"]
    after = cands[cands.index(passing) + 1:]  # the ladder stopped at its first useful pass
    assert after and all(c["status"] == "not tried" and "stopped at" in c["reason"]
                         for c in after), after
    kept = passing["float"]
    assert len(kept) == int(rec["rung"].split(", ")[-1].split()[0])  # k of "k layer(s) float"
    assert any("sensitive" in name for name in kept), kept
    manifest = json.loads((tmp_path / "o" / "models" /
                           (rec["artifact"].split("/")[-1] + ".json")).read_text())
    assert manifest["conversion"]["kept_float"]["names"] == kept
    assert "reverting" in manifest["conversion"]["kept_float"]["why"]


def _marked(images) -> bool:
    return bool(len(images)) and bool((np.asarray(images)[:, 0] == 255).all(axis=(1, 2)).any())


@pytest.mark.slow
def test_test_images_never_reach_calibration_or_selection(tiny_keras, marked_npz, tmp_path,
                                                          monkeypatch):
    import edgeproof.app.ladder as opt
    import edgeproof.app.optimize as out_mod

    seen = {"calibration": [], "selection": [], "test_phase": False}
    real_export, real_bench, real_test = opt.export_model, opt.bench_isolated, \
        out_mod.add_test_numbers

    def export(model, fmt, ctx, options=None):
        seen["calibration"].append(_marked(ctx.calibration))
        return real_export(model, fmt, ctx, options)

    def bench(path, settings, data, *a, **kw):
        seen["selection"].append(_marked(data.images))
        return real_bench(path, settings, data, *a, **kw)

    def test_numbers(*a, **k):
        seen["test_phase"] = True
        return real_test(*a, **k)

    monkeypatch.setattr(opt, "export_model", export)
    monkeypatch.setattr(opt, "bench_isolated", bench)
    monkeypatch.setattr(out_mod, "add_test_numbers", test_numbers)
    result = out_mod.optimize(OptimizeConfig(str(tiny_keras), str(marked_npz), str(tmp_path / "o"),
                                             formats=("tflite-int8", "onnx-int8"), calib_size=100,
                                             large_calib_size=300, gate_mode="point"))
    assert seen["calibration"] and seen["selection"] and seen["test_phase"]
    assert not any(seen["calibration"]) and not any(seen["selection"])
    rec = result["recommendation"]
    assert rec["validation"]["top1_agreement"] >= 0.99 and rec["accuracy"] is not None
    written = json.loads((tmp_path / "o" / "optimize.json").read_text())
    assert written["gate"]["split"] == "validation" and written["pareto"]
    assert (tmp_path / "o" / "models" / rec["artifact"].split("/")[-1]).exists()
    for name in ("optimize.md", "report.html", "pareto.png"):
        assert (tmp_path / "o" / name).stat().st_size > 500


@pytest.mark.slow
def test_a_gate_nothing_meets_exits_1_naming_the_closest(tiny_keras, tmp_path):
    """A gate no file can meet on any CPU: parity that always holds (agreement >= 0, any
    drop, decided on the point figures) and a 1-byte flash budget that no model file fits,
    so the outcome never depends on how the int8 kernels round."""
    r = run_cli("optimize", tiny_keras, "--dataset", "digits", "--formats", "tflite-dynamic",
                "--min-agreement", "0", "--max-accuracy-drop", "100", "--gate", "point",
                "--flash-budget", "1", "--out", tmp_path / "o", "--quiet")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "closest: tflite-dynamic/litert" in r.stderr, r.stderr
    assert "> 1 B budget" in r.stderr, r.stderr  # the flash budget is what it misses
    assert "Traceback" not in r.stderr
    result = json.loads((tmp_path / "o" / "optimize.json").read_text())
    assert result["recommendation"] is None and result["candidates"][0]["passed"] is False


@pytest.mark.slow
def test_model_and_dataset_that_do_not_fit(tiny_keras, tmp_path):
    r = run_cli("optimize", tiny_keras, "--dataset", "cifar10.npz", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_the_test_pass_shared_among_workers_gives_the_same_answers(tiny_exports, tiny_dataset):
    """The untimed test-split pass splits the images among cores; the answers are the
    same as one pass over all of them, in the same order."""
    from edgeproof.app.optimize import probs_on_test_split
    from edgeproof.bench.settings import EvalData

    ds = tiny_dataset
    ref = np.full((len(ds.y_test), ds.num_classes), 1.0 / ds.num_classes, np.float32)
    data = EvalData(ds.x_test, ds.y_test, ref)
    one = probs_on_test_split(tiny_exports["tflite-int8"], data, workers=1)
    three = probs_on_test_split(tiny_exports["tflite-int8"], data, workers=3)
    assert one.shape == (len(ds.y_test), ds.num_classes)
    assert 0.5 < (one.argmax(1) == ds.y_test).mean()  # a real model's answers, not noise
    np.testing.assert_array_equal(one, three)
