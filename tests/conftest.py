"""Shared fixtures: a tiny trained model and its exports (built once per session); the
shared datasets and the CLI runner live in tests/helpers.py.

The markers are checked, not hoped for: a test that uses a fixture which trains or converts
a model (``SLOW_FIXTURES``, directly or through another fixture) must be marked ``slow``,
and a test that reads ../shared (``helpers.shared_path``) must be marked ``shared``, or
the run stops and names it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests import helpers
from tests.helpers import TINY_FORMATS

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Fixtures that train or convert a real model: their users are slow tests.
SLOW_FIXTURES = {"tiny_model", "tiny_context", "tiny_exports", "tiny_reference", "default_run",
                 "torch_models"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items
                if SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("these tests train or convert a model (a fixture of "
                                f"{sorted(SLOW_FIXTURES)}) but are not marked slow: "
                                + ", ".join(unmarked))


@pytest.fixture(autouse=True)
def _current_test(request):
    """The running test, so that helpers.shared_path can check its ``shared`` marker."""
    helpers.CURRENT_TEST = request.node
    yield
    helpers.CURRENT_TEST = None


@pytest.fixture(scope="session")
def tiny_dataset():
    """The built-in digits at 16x16: 10 classes, about 1800 real images."""
    from edgeproof.datasets import load_dataset

    return load_dataset("digits", image_size=16, seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset):
    """small_cnn trained for 3 quick epochs on tiny_dataset (well above chance)."""
    from edgeproof.toolkit.models import create_model
    from edgeproof.tfcompat import set_seed
    from edgeproof.toolkit.train import TrainConfig, train_model

    set_seed(0)
    model = create_model("small_cnn", tiny_dataset.num_classes, tiny_dataset.input_shape)
    train_model(model, tiny_dataset, TrainConfig(epochs=3, batch_size=64, verbose=0))
    return model


@pytest.fixture(scope="session")
def tiny_context(tiny_model, tiny_dataset):
    from edgeproof.export.context import calibration_context

    return calibration_context(tiny_dataset, 100, 0, {"model_name": "small_cnn"})


@pytest.fixture(scope="session")
def tiny_exports(tiny_model, tiny_context, tmp_path_factory):
    """Each of TINY_FORMATS exported to one folder: {format: path}."""
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.formats import export_model

    out = tmp_path_factory.mktemp("exports")
    return {f: write_artifact(export_model(tiny_model, f, tiny_context), out, f"tiny-{f}")
            for f in TINY_FORMATS}


@pytest.fixture(scope="session")
def tiny_reference(tiny_model, tiny_dataset):
    """The Keras model's probabilities on the tiny test split."""
    from edgeproof.app.reference_answers import reference_probs

    return reference_probs(tiny_model, tiny_dataset)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """`edgeproof run` with no options but --out: the README's main job (run once)."""
    import json

    from tests.helpers import run_cli

    out = tmp_path_factory.mktemp("run")
    proc = run_cli("run", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return out, json.loads((out / "report.json").read_text()), proc


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def torch_models(tmp_path_factory):
    """PyTorch files made by plain PyTorch in its own process (tests/torch_models.py):
    {file name: path}. Skipped where the [torch] extra is not installed."""
    pytest.importorskip("torch", reason="PyTorch models need the [torch] extra")
    from tests.torch_models import make_torch_models

    return make_torch_models(tmp_path_factory.mktemp("torch"))
