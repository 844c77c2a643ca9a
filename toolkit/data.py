"""The tf.data input pipelines training reads: arrays in memory, or image files streamed.

``make_tf_dataset`` feeds ``model.fit`` from a ``Dataset``'s uint8 arrays with the
dataset's scale/offset, per-epoch orders that are a pure function of (seed, epoch) (so a
resumed run sees the batches an uninterrupted one would) and an augmentation preset.
``folder_pipeline`` streams a folder too large to hold as arrays.

Example:
    >>> data = make_tf_dataset(ds.x_train, ds.y_train, ds, 32, True, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from edgeproof.datasets import Dataset
from edgeproof.toolkit.augment import make_augmenter
from edgeproof.tfcompat import tf
from edgeproof.validation import check_int


def make_tf_dataset(x: np.ndarray, y: np.ndarray, ds: Dataset, batch_size: int,
                    shuffle: bool, seed: int, augment: str | None = None,
                    epochs: tuple[int, int] | None = None):
    """uint8 arrays -> batched float tf.data with the dataset's scale/offset, prefetched.

    Args:
        shuffle: shuffle the examples; with ``epochs`` the order of epoch ``e`` is a pure
            function of ``(seed, e)``, so a resumed run sees the same batches as an
            uninterrupted one.
        epochs: ``(first, stop)``: yield epochs ``first..stop-1`` back to back (fit with
            ``steps_per_epoch = steps_per_epoch(len(x), batch_size)``).
        augment: a preset of ``toolkit.augment`` applied to each training batch.
    """
    t = tf()
    pre = ds.preprocessing
    if shuffle and epochs is not None:
        first, stop = epochs
        orders = np.stack([epoch_order(len(x), seed, e) for e in range(first, stop)]) \
            if stop > first else np.zeros((0, len(x)), np.int32)
        xs, ys = t.constant(x), t.constant(y)
        data = t.data.Dataset.from_tensor_slices(orders).flat_map(
            lambda order: t.data.Dataset.from_tensor_slices(order).batch(batch_size)).map(
            lambda idx: (t.gather(xs, idx), t.gather(ys, idx)))
    else:
        data = t.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size)
    scale, offset = float(pre.scale), float(pre.offset)
    data = data.map(lambda a, b: (t.cast(a, t.float32) * scale + offset, b),
                    num_parallel_calls=t.data.AUTOTUNE, deterministic=True)
    if augment:
        aug = make_augmenter(augment, seed)
        data = data.map(lambda a, b: (aug(a, training=True), b),
                        num_parallel_calls=t.data.AUTOTUNE)
    return data.prefetch(t.data.AUTOTUNE)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch``: deterministic in (seed, epoch), not in history."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def folder_pipeline(files, labels, image_size: int, batch_size: int = 32, shuffle: bool = True,
                    seed: int = 0, cache: bool = True, scale: float = 1.0 / 255.0):
    """A streaming ``tf.data`` pipeline over image files: parallel decode, resize, cache,
    shuffle, batch, prefetch. For folders too large to hold as arrays.

    Files TensorFlow cannot decode are dropped (``ignore_errors``); run
    ``edgeproof.datasets.load_folder`` first to get a warning naming each one.

    Example:
        >>> classes, files, labels = list_images("../shared/datasets/flowers")  # doctest: +SKIP
        >>> data = folder_pipeline(files, labels, 150)  # doctest: +SKIP
    """
    t = tf()
    check_int("image_size", image_size, "folder_pipeline", low=8, high=4096)

    def decode(path, label):
        img = t.io.decode_image(t.io.read_file(path), channels=3, expand_animations=False)
        img = t.image.resize(img, [image_size, image_size])
        return t.cast(t.clip_by_value(t.round(img), 0, 255), t.uint8), label

    data = t.data.Dataset.from_tensor_slices(([str(f) for f in files], np.asarray(labels)))
    data = data.map(decode, num_parallel_calls=t.data.AUTOTUNE).ignore_errors()
    if cache:
        data = data.cache()
    if shuffle:
        data = data.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda a, b: (t.cast(a, t.float32) * scale, b),
                                      num_parallel_calls=t.data.AUTOTUNE)
    return data.prefetch(t.data.AUTOTUNE)
