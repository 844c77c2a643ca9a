"""The model registry: every registered model builds at a small valid input, trains one
step and exports (slow); layouts, input-size limits, weights files, fine-tuning depth and
misspelt options are checked on the builders; every registry refuses a duplicate name."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgeproof.toolkit.models import create_model, list_models, model_spec

# TFLite conversion of a 300-layer InceptionV3/ResNet50 costs minutes on 2 shared cores, so
# by default transfer models export to the keras format; EDGEPROOF_FULL_EXPORT=1 exports
# them to tflite-fp32 too (verified passing: 28 passed with it set).
FULL_EXPORT = os.environ.get("EDGEPROOF_FULL_EXPORT") == "1"


def _shape(name):
    spec = model_spec(name)
    side = max(spec.min_size, 16) if spec.family != "transfer" else spec.min_size
    channels = 3 if spec.family == "transfer" or spec.default_input_shape[-1] == 3 else 1
    return (side, side, channels)


def _kw(name):
    return {"weights": "none"} if model_spec(name).family == "transfer" else {}


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_one_step_and_exports(name, tmp_path):
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import ExportContext
    from edgeproof.export.formats import export_model
    from edgeproof.manifest import Preprocessing

    shape = _shape(name)
    model = create_model(name, 3, shape, **_kw(name))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    loss = model.train_on_batch(x, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    assert model.output_shape == (None, 3)
    fmt = "keras" if model_spec(name).family == "transfer" and not FULL_EXPORT else "tflite-fp32"
    ctx = ExportContext(["a", "b", "c"], Preprocessing(size=list(shape[:2]),
                                                       color="rgb" if shape[-1] == 3 else "grayscale"))
    path = write_artifact(export_model(model, fmt, ctx), tmp_path, name)
    assert path.exists()


def test_flowers_cnn_param_count():
    assert create_model("flowers_cnn", 5, (150, 150, 3)).count_params() == 3_455_173


def test_lab_series_layouts():
    m4 = create_model("lab_model4", 10, (28, 28, 1))
    pools = [la for la in m4.layers if la.__class__.__name__ == "MaxPooling2D"]
    assert pools[0].strides == (2, 2)
    m3 = create_model("lab_model3", 10, (28, 28, 1))
    assert [la for la in m3.layers if "pool" in la.name][0].strides == (1, 1)
    d5 = create_model("lab_dropout_model5", 10, (28, 28, 1))
    assert sum(la.__class__.__name__ == "Dropout" for la in d5.layers) == 2
    assert [la.units for la in d5.layers if la.__class__.__name__ == "Dense"] == [128, 256, 10]


def test_min_input_size_is_checked():
    from edgeproof.errors import UsageError

    with pytest.raises(UsageError, match="at least 75x75"):
        create_model("inception_v3_frozen", 5, (64, 64, 3), weights="none")
    with pytest.raises(UsageError, match="at least 32x32"):
        create_model("resnet50_full", 5, (28, 28, 3), weights="none")


def test_imagenet_weights_offline_is_one_line_error(tmp_path, monkeypatch):
    from edgeproof.errors import ModelError
    from edgeproof.toolkit.models import transfer

    monkeypatch.setenv("HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.setattr(transfer, "_check_online", transfer._check_online)
    with pytest.raises(ModelError) as e:
        def offline(*a, **k):
            raise OSError("no network")
        monkeypatch.setattr("socket.create_connection", offline)
        create_model("inception_v3_features", 5, (75, 75, 3), weights="imagenet")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / ".keras" / "models") in msg
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg


def test_missing_weights_file(tmp_path):
    from edgeproof.errors import ModelError

    with pytest.raises(ModelError, match="Weights file not found"):
        create_model("resnet50_frozen", 5, (32, 32, 3), weights=str(tmp_path / "nope.h5"))


def test_finetune_unfreezes_top_layers():
    from edgeproof.toolkit.models.transfer import unfreeze_top

    m = create_model("inception_v3_finetune", 5, (75, 75, 3), weights="none")
    base = m.get_layer("inception_v3")
    assert len(base.layers) == 311 and not base.trainable
    assert unfreeze_top(m, 50) == 50
    bns = [la for la in base.layers if la.__class__.__name__ == "BatchNormalization"]
    assert all(abs(b.momentum - 0.9) < 1e-9 for b in bns)


def test_a_misspelt_builder_option_is_an_error_naming_the_valid_ones():
    from edgeproof.errors import UsageError

    with pytest.raises(UsageError, match="wieghts.*Valid options: weights, fine_tune_layers"):
        create_model("resnet50_frozen", 3, (32, 32, 3), wieghts="none")
    with pytest.raises(UsageError, match="does not take option"):
        create_model("lab_model1", 3, (28, 28, 1), dropout=0.5)


def test_models_formats_and_runtimes_refuse_a_duplicate_name_alike():
    from edgeproof.bench.runtimes import RUNTIMES, get_runtime_class
    from edgeproof.export.formats import FORMATS, get_format
    from edgeproof.toolkit.models.model_table import register_model

    with pytest.raises(ValueError, match="model 'small_cnn' is registered twice"):
        register_model("small_cnn", description="again")(lambda num_classes, input_shape: None)
    with pytest.raises(ValueError, match="format 'onnx-fp32' is registered twice"):
        FORMATS.add("onnx-fp32", get_format("onnx-fp32"))
    with pytest.raises(ValueError, match="runtime 'litert' is registered twice"):
        RUNTIMES.add("litert", get_runtime_class("litert"))
