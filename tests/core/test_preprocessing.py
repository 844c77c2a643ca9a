"""The preprocessing PyTorch users write (issue 30): per-channel mean / std, resize of the
shorter side plus a centre crop, on --preprocess and in the manifest; the geometry on a
non-square image, the arithmetic against a hand computation, and old manifests unchanged."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.errors import ModelError, UsageError
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo, parse_preprocess
from edgeproof.preprocess import decode_image, prepare, resize_batch, to_float
from tests.helpers import one_line_error, run_cli

TORCHVISION = "mean=0.485,0.456,0.406,std=0.229,0.224,0.225,resize=256,crop=224"
LEGACY = Path(__file__).parents[1] / "fixtures" / "edgekit-0.1.0"


def _manifest(pre: Preprocessing, dtype="float32", quant=None, layout="NHWC") -> Manifest:
    h, w = pre.size
    return Manifest(format="x", class_names=["a", "b"],
                    input=TensorInfo("in", [-1, h, w, pre.channels], dtype, layout, quant),
                    output=TensorInfo("out", [-1, 2]), preprocessing=pre)


def test_the_torchvision_form_parses_as_written():
    spec = parse_preprocess(TORCHVISION)
    assert spec == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                    "resize": 256, "crop": 224}
    pre = Preprocessing(size=[32, 32]).override(spec)
    assert pre.size == [224, 224] and (pre.resize, pre.crop) == (256, 224)
    mixed = parse_preprocess("scale=1/255,mean=0.5 , 0.25,1/4,order=BGR,colour=RGB")
    assert mixed == {"scale": 1 / 255, "mean": [0.5, 0.25, 0.25], "channel_order": "BGR",
                     "color": "rgb"}


@pytest.mark.parametrize("text,needle", [
    ("mean=0.5,0.5,scale=1/255,2", "'2' after scale="),
    ("0.5,mean=0.5", "not KEY=VALUE"),
    ("mean=0.5,x", "must be a number"),
    ("avg=0.5", "no key 'avg'"),
    ("crop=22.5", "whole number"),
    ("resize=0", "whole number"),
    ("colour=rgb,color=grayscale", "given twice"),
    ("order=RGBA", "one of RGB, BGR"),
])
def test_bad_items_are_one_clear_line(text, needle):
    with pytest.raises(UsageError, match=needle) as e:
        parse_preprocess(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("fields,needle", [
    ({"mean": [0.5, 0.5]}, "2 value"),
    ({"std": [0.2]}, "1 value"),
    ({"std": [0.2, 0.0, 0.2]}, "> 0"),
    ({"resize": 200, "crop": 224}, "larger than resize=200"),
    ({"resize": 16}, "input size [32, 32] is larger"),
])
def test_inconsistent_fields_are_refused(fields, needle):
    with pytest.raises(UsageError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        Preprocessing(size=[32, 32]).override(fields)
    with pytest.raises(UsageError, match="1 channel"):
        Preprocessing(size=[8, 8], color="grayscale").override({"mean": [0.1, 0.2, 0.3]})


def test_per_channel_arithmetic_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pre = Preprocessing(size=[4, 5], mean=mean, std=std)
    x = to_float(px, pre)
    assert x.dtype == np.float32
    for c in range(3):  # torchvision: ToTensor (pixel / 255), then Normalize per channel
        hand = (px[..., c].astype(np.float64) / 255.0 - mean[c]) / std[c]
        np.testing.assert_allclose(x[..., c], hand, rtol=0, atol=1e-5)
    caffe = Preprocessing(size=[4, 5], scale=1.0, offset=-1.0, mean=[10, 20, 30], std=[2, 4, 8])
    hand = (px.astype(np.float64) - 1.0 - [10, 20, 30]) / [2, 4, 8]
    np.testing.assert_allclose(to_float(px, caffe), hand, atol=1e-5)


def test_prepare_normalises_then_quantizes_and_lays_out():
    px = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    pre = Preprocessing(size=[4, 4], mean=[0.2, 0.4, 0.6], std=[0.5, 0.25, 0.4])
    x = to_float(px, pre)
    np.testing.assert_array_equal(prepare(px, _manifest(pre, layout="NCHW")),
                                  x.transpose(0, 3, 1, 2))
    q = prepare(px, _manifest(pre, "int8", {"scale": 0.02, "zero_point": 3}))
    np.testing.assert_array_equal(q, np.clip(np.round(x / np.float32(0.02)) + 3, -128, 127))


def _blocks(h, w):
    """An image of 2x2 blocks, each a distinct value: nearest halving keeps one per block."""
    b = (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)
    return b, np.repeat(np.repeat(b, 2, 0), 2, 1)


@pytest.mark.parametrize("landscape", [True, False])
def test_resize_shorter_side_then_centre_crop(landscape, tmp_path):
    """A 40x20 image, resize=10, crop=8: the shorter side goes to 10 (20x10, aspect kept),
    and the centre 8x8 is cut from it (torchvision's offsets round((20-8)/2), round(1))."""
    blocks, img = _blocks(10, 20)
    if not landscape:
        blocks, img = blocks.T.copy(), img.T.copy()
    pre = Preprocessing(size=[8, 8], color="grayscale", interpolation="nearest",
                        resize=10, crop=8)
    expect = blocks[1:9, 6:14] if landscape else blocks[6:14, 1:9]
    out = resize_batch(img[None, ..., None], pre)
    assert out.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(out[0, ..., 0], expect)
    Image.fromarray(img).save(tmp_path / "im.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "im.png", pre)[..., 0], expect)
    just_crop = Preprocessing(size=[10, 10], color="grayscale", interpolation="nearest", crop=10)
    np.testing.assert_array_equal(resize_batch(img[None, ..., None], just_crop)[0, ..., 0],
                                  blocks[:, 5:15] if landscape else blocks[5:15, :])


def test_images_already_at_the_size_are_taken_as_they_are():
    """Decoded (and dataset) images come at the model's size: geometry is not applied twice."""
    px = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    pre = Preprocessing(size=[8, 8], resize=10, crop=8)
    assert resize_batch(px, pre) is px


def test_old_manifests_load_and_write_back_unchanged():
    for side in sorted(LEGACY.glob("*.json")):
        d = json.loads(side.read_text())
        m = Manifest.from_dict(d)
        assert m.preprocessing.mean is None and m.preprocessing.crop is None
        assert json.dumps(m.to_dict()["preprocessing"]) == json.dumps(d["preprocessing"])
    m = _manifest(Preprocessing(size=[8, 8], color="grayscale"))
    text = m.to_json()
    assert not {"mean", "std", "resize", "crop"} & set(json.loads(text)["preprocessing"])
    assert Manifest.from_dict(json.loads(text)).to_json() == text


def test_new_fields_round_trip_and_a_bad_manifest_is_malformed():
    pre = Preprocessing(size=[32, 32]).override(parse_preprocess(TORCHVISION))
    m = _manifest(pre)
    back = Manifest.from_dict(json.loads(m.to_json()))
    assert back == m and back.preprocessing.std == [0.229, 0.224, 0.225]
    d = json.loads(m.to_json())
    d["preprocessing"]["mean"] = [0.5]
    with pytest.raises(ModelError, match="malformed"):
        Manifest.from_dict(d)


def test_reference_preprocessing_takes_the_new_fields(tmp_path):
    """--preprocess on a file without a manifest: mean/std/resize/crop flow in, size follows."""
    from edgeproof.reference import load_reference, reference_preprocessing
    from tests.core.test_reference_loader import _onnx

    ref = load_reference(_onnx(tmp_path / "m.onnx"))
    pre, _, how = reference_preprocessing(ref, parse_preprocess(TORCHVISION))
    assert pre.size == [224, 224] and pre.resize == 256 and pre.mean == [0.485, 0.456, 0.406]
    assert how.startswith("given")


def test_the_cli_refuses_a_bad_item_in_one_line(tmp_path):
    one_line_error(run_cli("predict", tmp_path / "none.onnx", tmp_path,
                           "--preprocess", "mean=0.5,0.5,scale=1/255,2"), "after scale=")
