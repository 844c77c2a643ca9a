"""A default never fails on the user's data: `edgeproof run --dataset FOLDER` with every
default completes on a folder of 80 photos in two classes (48 train images, fewer than the
default calibration size: it is clamped and said in one line), while an explicit
`--calib-size` larger than the train split is an error naming 48, before training starts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.helpers import one_line_error, run_cli

PER_CLASS = 40  # 80 photos: split 60/20/20 gives 48 train images


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two classes a model can tell apart a little: warm photos with a disc, cool photos
    with a bar; sizes, positions, shades and noise vary, saved as JPEG like a camera's."""
    root = tmp_path_factory.mktemp("data") / "photos"
    rng = np.random.default_rng(0)
    for cls, base in (("discs", (200, 90, 60)), ("bars", (60, 110, 200))):
        (root / cls).mkdir(parents=True)
        for i in range(PER_CLASS):
            w, h = (int(v) for v in rng.integers(140, 260, 2))
            tint = np.clip(np.array(base) + rng.integers(-40, 40, 3), 0, 255)
            pixels = np.clip(rng.normal(tint, 25, (h, w, 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels)
            draw, s = ImageDraw.Draw(img), int(rng.integers(30, 60))
            x, y = int(rng.integers(0, w - 2 * s)), int(rng.integers(0, h - 2 * s))
            if cls == "discs":
                draw.ellipse((x, y, x + 2 * s, y + 2 * s), fill=(250, 240, 200))
            else:
                draw.rectangle((x, y, x + 2 * s, y + s // 2), fill=(20, 20, 40))
            img.save(root / cls / f"IMG_{i:04d}.jpg", quality=85)
    return root


@pytest.mark.slow
def test_run_with_every_default_completes_on_80_photos(photos, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--dataset", photos, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    said = " ".join((proc.stdout + proc.stderr).split())  # the console may wrap a long line
    assert "has 48 images, fewer than the default 200; calibrating on all 48" in said, said
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["class_names"] == ["bars", "discs"]
    assert report["dataset"]["split"] == {"train": 48, "val": 16, "test": 16}
    assert report["calibration"]["n"] == 48 and "calibrating on all 48" in \
        report["calibration"]["note"]
    assert [r["status"] for r in report["results"]] == ["ok"] * 4, report["results"]
    assert report["training"]["epochs"] == 20
    assert (out / "report.html").stat().st_size > 1000


def test_an_explicit_calib_size_too_big_fails_before_training(photos, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--dataset", photos, "--calib-size", "500", "--out", out)
    assert proc.returncode == 2
    line = one_line_error(proc, "--calib-size 500", "48 images", "--calib-size 48 or less")
    assert "photos" in line
    assert not list(out.rglob("history.csv")) and not (out / "models").exists()
