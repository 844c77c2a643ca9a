"""Shared fixtures: a tiny trained model and its exports (built once per session),
the shared datasets (skipped when absent) and a CLI runner (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
TINY_FORMATS = ("keras", "tflite-fp32", "tflite-int8", "onnx-fp32")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/datasets, or skip the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared dataset {p} not present")
    return p


def run_cli(*args: str, cwd: str | Path | None = None, env: dict | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``edgekit ARGS`` as a subprocess (``python -m toolkit``) from this checkout."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "toolkit", *map(str, args)], cwd=cwd or ROOT,
                          env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_dataset():
    """The built-in digits at 16x16: 10 classes, about 1800 real images."""
    from toolkit.data import load_dataset

    return load_dataset("digits", image_size=16, seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset):
    """small_cnn trained for 3 quick epochs on tiny_dataset (well above chance)."""
    from toolkit.models import create_model
    from toolkit.tfcompat import set_seed
    from toolkit.train import TrainConfig, train_model

    set_seed(0)
    model = create_model("small_cnn", tiny_dataset.num_classes, tiny_dataset.input_shape)
    train_model(model, tiny_dataset, TrainConfig(epochs=3, batch_size=64, verbose=0))
    return model


@pytest.fixture(scope="session")
def tiny_context(tiny_model, tiny_dataset):
    from toolkit.pipeline import calibration_context

    return calibration_context(tiny_dataset, 100, 0, {"model_name": "small_cnn"})


@pytest.fixture(scope="session")
def tiny_exports(tiny_model, tiny_context, tmp_path_factory):
    """Each of TINY_FORMATS exported to one folder: {format: path}."""
    from export.artifact import write_artifact
    from export.formats import export_model

    out = tmp_path_factory.mktemp("exports")
    return {f: write_artifact(export_model(tiny_model, f, tiny_context), out, f"tiny-{f}")
            for f in TINY_FORMATS}


@pytest.fixture(scope="session")
def tiny_reference(tiny_model, tiny_dataset):
    """The Keras model's probabilities on the tiny test split."""
    from toolkit.pipeline import reference_probs

    return reference_probs(tiny_model, tiny_dataset)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
