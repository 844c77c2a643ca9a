"""Loading datasets: the same seed gives the same split, and a folder of the shared flowers
with corrupt files in it loads the good images and names the bad ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgeproof.datasets import load_dataset
from tests.helpers import small_flowers_folder


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (load_dataset("digits", 16, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.shared
def test_corrupt_files_are_skipped_with_a_warning(tmp_path, caplog):
    """6 shared flowers per class for 3 classes (symlinks) plus 2 bad files."""
    root = small_flowers_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="edgeproof.datasets"):
        ds = load_dataset(root, image_size=32, seed=0)
    text = caplog.text
    assert "broken.jpg" in text and "empty.png" in text
    assert sum(ds.split_sizes.values()) == 18
    assert ds.class_names == ["daisy", "rose", "tulip"]
