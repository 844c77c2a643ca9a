"""PyTorch files as references: .pt2 and TorchScript load with PyTorch's own APIs and
answer alike; what each file says about itself (layout, logits, fixed batch, dim order)
is read right; pickles, state_dicts, two inputs, truncated files and an ONNX file whose
external data is missing are refused in one line. The models come from plain PyTorch in
a subprocess (tests/torch_models.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.errors import ModelError
from edgeproof.reference import load_reference
from edgeproof.reference_torch import torch_file_kind

pytestmark = pytest.mark.slow


def _pixels(n=24, size=16):
    from edgeproof.datasets import load_dataset

    ds = load_dataset("digits", image_size=size, seed=0)
    x = np.repeat(ds.x_test[:n], 3, axis=-1).astype(np.float32) / 255.0
    return (x - np.array([0.2, 0.4, 0.6], np.float32)) / np.array([0.5, 0.25, 0.4], np.float32), \
        ds.y_test[:n]


def test_pt2_torchscript_and_their_onnx_answer_alike(torch_models):
    x, y = _pixels()
    probs = {}
    for name in ("net.pt2", "net_b1.pt2", "net_cl.pt2", "net.pt", "net.onnx"):
        ref = load_reference(torch_models[name])
        assert ref.layout == "NCHW" and ref.num_classes == 10
        # TorchScript keeps no input size: this one runs at any, and says so
        assert ref.input_shape == (16, 16, 3) or (name == "net.pt" and ref.extras["any_size"])
        assert ref.outputs_logits, name  # a Linear last: softmax is applied for the decision
        probs[name] = ref.predict(x)
        assert np.allclose(probs[name].sum(1), 1, atol=1e-5)
    for name, p in probs.items():
        assert np.abs(p - probs["net.pt2"]).max() < 1e-4, name
    assert (probs["net.pt2"].argmax(1) == y).mean() > 0.7  # it learned the digits


def test_what_a_pt2_says_about_itself(torch_models):
    dyn, b1, cl = (load_reference(torch_models[n]) for n in ("net.pt2", "net_b1.pt2", "net_cl.pt2"))
    assert (dyn.kind, dyn.extras["batch"], dyn.extras["dim_order"]) == ("torch_export", None, "contiguous")
    assert b1.extras["batch"] == 1
    assert (cl.extras["batch"], cl.extras["dim_order"]) == (2, "channels_last")
    assert load_reference(torch_models["net.pt"]).kind == "torchscript"
    x, _ = _pixels(5)  # five images through fixed batches of 1 and 2 (padded)
    assert b1.predict(x).shape == cl.predict(x).shape == (5, 10)


@pytest.mark.parametrize("name,needle", [
    ("state_dict.pt", "state_dict"), ("pickled.pt", "does not unpickle"),
    ("two_inputs.pt2", "2 inputs")])
def test_files_edgeproof_refuses_in_one_line(torch_models, name, needle):
    with pytest.raises(ModelError, match=needle) as e:
        load_reference(torch_models[name])
    assert "\n" not in str(e.value) and "torch.export.save" in str(e.value) or needle == "2 inputs"


def test_a_truncated_or_foreign_torch_file_is_one_line(torch_models, tmp_path):
    data = torch_models["net.pt2"].read_bytes()
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a zip" * 50)
    for p in (cut, junk):
        assert torch_file_kind(p) is None
        with pytest.raises(ModelError, match="not a readable PyTorch file"):
            load_reference(p)


def test_onnx_external_data_is_read_and_a_missing_one_named(torch_models, tmp_path):
    assert (torch_models["net.onnx"].parent / "net.onnx.data").exists()  # torch's default
    load_reference(torch_models["net.onnx"])
    lone = tmp_path / "net.onnx"
    lone.write_bytes(torch_models["net.onnx"].read_bytes())
    with pytest.raises(ModelError, match=r"net\.onnx\.data, which is not there"):
        load_reference(lone)
