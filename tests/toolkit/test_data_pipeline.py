"""The toolkit's input pipeline: a folder of shared flowers (two bad files among them)
decoded, resized and batched by tf.data; augmentation presets; an unknown preset named."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import small_flowers_folder


@pytest.fixture
def small_folder(tmp_path):
    """A folder dataset of symlinks to 6 shared flowers per class for 3 classes + 2 bad files."""
    return small_flowers_folder(tmp_path)


@pytest.mark.shared
def test_folder_pipeline_decodes_resizes_batches(small_folder):
    from edgeproof.datasets import list_images
    from edgeproof.toolkit.data import folder_pipeline

    classes, files, labels = list_images(small_folder)
    assert {"broken.jpg", "empty.png"} <= {f.name for f in files}  # image names, bad content
    data = folder_pipeline(files, labels, 40, batch_size=8, shuffle=True)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in data])
    x = np.concatenate(xs)
    assert x.shape == (18, 40, 40, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert sorted(np.concatenate(ys).tolist()) == sorted([0] * 6 + [1] * 6 + [2] * 6)


@pytest.mark.parametrize("preset", ["chollet", "lab8", "lab9"])
def test_augment_presets_change_images_keep_shape(preset):
    from edgeproof.toolkit.augment import make_augmenter

    x = np.random.default_rng(0).random((4, 24, 24, 3), dtype=np.float32)
    y = make_augmenter(preset, seed=1)(x, training=True).numpy()
    assert y.shape == x.shape and not np.allclose(x, y)
    assert make_augmenter(preset)(x, training=False).numpy().tolist() == x.tolist()


def test_unknown_augment_preset_lists_valid():
    from edgeproof.errors import UsageError
    from edgeproof.toolkit.train import TrainConfig

    with pytest.raises(UsageError, match="chollet"):
        TrainConfig(augment="cholet").validate()
