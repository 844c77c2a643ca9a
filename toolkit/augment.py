"""Data augmentation presets from the lab reports, built from Keras preprocessing layers.

Augmentation runs in the ``tf.data`` input pipeline (on float images in [0, 1] scale of
the dataset), never inside the model, so exported models carry no augmentation layers.

Presets:
    chollet: rotation 40 deg, shift 0.2, shear 0.2, zoom 0.2, horizontal flip, nearest fill
        (Chollet's ImageDataGenerator settings for the flowers CNN).
    lab8: horizontal flip, shift 0.1, rotation 10 deg, zoom 0.2 (CIFAR-10 model 8).
    lab9: horizontal flip, shift 0.1 (CIFAR-10 models 9 and 10).

tf_keras has no shear layer, so ``RandomShear`` below applies a random x-shear with
the same projective-transform op the Keras layers use.

Example:
    >>> aug = make_augmenter("lab9", seed=0)  # doctest: +SKIP
    >>> batch = aug(images, training=True)  # doctest: +SKIP
"""

from __future__ import annotations


from edgeproof.tfcompat import keras, tf
from edgeproof.validation import check_choice

PRESETS = {
    "chollet": {"rotation_deg": 40, "shift": 0.2, "shear": 0.2, "zoom": 0.2, "hflip": True},
    "lab8": {"rotation_deg": 10, "shift": 0.1, "shear": 0.0, "zoom": 0.2, "hflip": True},
    "lab9": {"rotation_deg": 0, "shift": 0.1, "shear": 0.0, "zoom": 0.0, "hflip": True},
}


def _shear_layer_class():
    k, t = keras(), tf()

    class RandomShear(k.layers.Layer):
        """Random horizontal shear with intensity in [-factor, factor], nearest fill.

        Like ``ImageDataGenerator(shear_range=...)``, the factor is the shear angle in
        radians; each image gets its own angle.
        """

        def __init__(self, factor: float, seed: int | None = None, **kw):
            super().__init__(**kw)
            self.factor, self.seed = float(factor), seed
            self._rng = t.random.Generator.from_seed(seed) if seed is not None else \
                t.random.Generator.from_non_deterministic_state()

        def call(self, images, training=True):
            if not training or self.factor == 0:
                return images
            n = t.shape(images)[0]
            h = t.cast(t.shape(images)[1], t.float32)
            s = t.math.tan(self._rng.uniform([n], -self.factor, self.factor))
            zeros, ones = t.zeros([n]), t.ones([n])
            # Output pixel (x, y) samples input (x + s*(y - h/2), y): shear about the centre.
            transform = t.stack([ones, s, -s * h / 2.0, zeros, ones, zeros, zeros, zeros], axis=1)
            return t.raw_ops.ImageProjectiveTransformV3(
                images=images, transforms=transform, output_shape=t.shape(images)[1:3],
                fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")

    return RandomShear


def make_augmenter(preset: str, seed: int | None = 0):
    """A ``keras.Sequential`` of preprocessing layers implementing ``preset``.

    Args:
        preset: one of ``PRESETS`` (chollet, lab8, lab9).
        seed: seeds every random layer (None: nondeterministic).

    Example:
        >>> make_augmenter("chollet").name  # doctest: +SKIP
        'augment_chollet'
    """
    check_choice("augmentation preset", preset, PRESETS, "train")
    p, k = PRESETS[preset], keras()
    layers = []
    if p["hflip"]:
        layers.append(k.layers.RandomFlip("horizontal", seed=seed))
    if p["rotation_deg"]:
        layers.append(k.layers.RandomRotation(p["rotation_deg"] / 360.0, fill_mode="nearest",
                                              seed=seed))
    if p["shift"]:
        layers.append(k.layers.RandomTranslation(p["shift"], p["shift"], fill_mode="nearest",
                                                 seed=seed))
    if p["shear"]:
        layers.append(_shear_layer_class()(p["shear"], seed=seed))
    if p["zoom"]:
        layers.append(k.layers.RandomZoom(p["zoom"], p["zoom"], fill_mode="nearest", seed=seed))
    return k.Sequential(layers, name=f"augment_{preset}")
