"""The toolkit's evaluation: the report files, the worst-classified images ranked by the true
class's probability, Grad-CAM (also inside a nested base), given probabilities reused.
(`edgeproof evaluate` / `explain` end to end: tests/cli/test_cli.py.)"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_evaluate_model_writes_all_reports(tiny_model, tiny_dataset, tmp_path):
    from edgeproof.toolkit.evaluate import evaluate_model

    hist = tmp_path / "history.csv"
    hist.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.6,1.0\n"
                    "1,0.7,0.8,0.75,0.7\n")
    rep = evaluate_model(tiny_model, tiny_dataset, tmp_path / "eval", history_csv=hist)
    for key in ("classification_report", "confusion_matrix", "worst_grid", "worst_table",
                "curves"):
        assert (tmp_path / "eval").joinpath(rep["files"][key].split("/")[-1]).stat().st_size > 0
    assert rep["accuracy"] > 0.5 and len(rep["worst"]) == 10
    probs = [w["probability"] for w in rep["worst"]]
    assert probs == sorted(probs)
    assert "precision" in (tmp_path / "eval" / "classification_report.txt").read_text()
    assert np.asarray(rep["confusion_matrix"]).sum() == len(tiny_dataset.y_test)


@pytest.mark.slow
def test_evaluate_model_reuses_given_probabilities_and_explains_the_worst(
        tiny_model, tiny_dataset, tmp_path):
    from edgeproof.errors import DataError
    from edgeproof.toolkit.evaluate import evaluate_model

    n = len(tiny_dataset.y_test)
    # probabilities that put every image in class 0: the report must follow them
    probs = np.full((n, 10), 0.01)
    probs[:, 0] = 0.91
    rep = evaluate_model(tiny_model, tiny_dataset, tmp_path / "ev", probs=probs, explain=2)
    assert rep["accuracy"] == np.mean(tiny_dataset.y_test == 0)
    assert np.asarray(rep["confusion_matrix"])[:, 1:].sum() == 0
    assert [p.split("/")[-1] for p in rep["gradcam"]] == [
        f"worst-{i + 1}-{r['index']}.png" for i, r in enumerate(rep["worst"][:2])]
    assert all((tmp_path / "ev" / "gradcam" / p.split("/")[-1]).stat().st_size > 0
               for p in rep["gradcam"])
    try:
        evaluate_model(tiny_model, tiny_dataset, tmp_path / "bad", probs=probs[:5])
    except DataError as e:
        assert "5 probability rows" in str(e)
    else:
        raise AssertionError("a probs/labels length mismatch must raise")


def test_evaluate_without_a_conv_layer_skips_gradcam(tiny_dataset, tmp_path):
    from edgeproof.toolkit.evaluate import evaluate_model
    from edgeproof.tfcompat import keras

    k = keras()
    inp = k.Input(tiny_dataset.input_shape)
    mlp = k.Model(inp, k.layers.Dense(10, activation="softmax")(k.layers.Flatten()(inp)))
    rep = evaluate_model(mlp, tiny_dataset, tmp_path / "ev", explain=3)
    assert rep["gradcam"] == [] and "no convolutional layer" in rep["gradcam_skipped"]


def test_worst_classified_ranks_by_true_class_probability():
    from edgeproof.toolkit.evaluate import worst_classified

    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    rows = worst_classified(probs, np.array([0, 0, 1]), 2)
    assert [r["index"] for r in rows] == [1, 2]
    assert rows[0] == {"index": 1, "predicted": 1, "actual": 0, "probability": 0.4}


@pytest.mark.slow
def test_gradcam_plain_and_nested(tiny_model, tiny_dataset, tmp_path):
    from edgeproof.toolkit.gradcam import find_last_conv, gradcam, save_overlay
    from edgeproof.toolkit.models import create_model

    x = tiny_dataset.x_test[:2].astype(np.float32) / 255.0
    heat, probs = gradcam(tiny_model, x)
    assert heat.shape[0] == 2 and heat.max() <= 1.0 and probs.shape == (2, 10)
    assert save_overlay(tiny_dataset.x_test[0], heat[0], tmp_path / "a.png").stat().st_size > 0
    nested = create_model("resnet50_frozen", 3, (32, 32, 3), weights="none")
    path = find_last_conv(nested)
    assert path[0] == "resnet50" and path[1].startswith("conv5")
    heat, _ = gradcam(nested, np.random.default_rng(0).random((1, 32, 32, 3), np.float32))
    assert heat.shape == (1, 1, 1)
