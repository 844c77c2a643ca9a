"""Quantization-aware training (tensorflow-model-optimization), then full-integer TFLite.

``quantize_model`` refuses nested models (a Keras Application base inside a Sequential
or functional model) and models with layers its registry does not know. edgeproof
therefore (1) flattens nested models into one functional graph that reuses the same
layers, (2) annotates only the layers the default 8-bit registry supports, leaving the
rest float for the converter's post-training calibration, then (3) fine-tunes a few
epochs on the training split and (4) converts to int8 like ``tflite-int8``.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, tf_keras_model
from edgeproof.export.graph import flatten_model
from edgeproof.export.tflite import convert_tflite
from edgeproof.preprocess import to_float
from edgeproof.validation import check_float, check_int
from edgeproof.errors import ExportError, first_line
from edgeproof.tfcompat import keras

log = logging.getLogger("edgeproof.export")


def _custom_objects(model) -> dict:
    """The model's layer classes Keras does not know by name (``ChannelShift`` of the
    BatchNorm fold, a user's custom layer): tfmot rebuilds the model from its config, and
    a class missing there comes back as its name, a string (``'str' object is not
    callable``)."""
    k = keras()
    return {type(layer).__name__: type(layer) for layer in model.layers
            if not hasattr(k.layers, type(layer).__name__)}


def quantize_supported(model) -> tuple[object, list[str]]:
    """Annotate the layers tfmot's default 8-bit registry supports, then ``quantize_apply``;
    returns (QAT model, names of the layers left float: the converter calibrates them).

    Args:
        model: a flat (non-nested) Keras model.

    Example:
        >>> qat, left_float = quantize_supported(flatten_model(model))  # doctest: +SKIP
        >>> left_float  # doctest: +SKIP
        ['batch_normalization_shift']
    """
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg)

    registry = reg.Default8BitQuantizeRegistry()
    q = tfmot.quantization.keras
    k = keras()
    left = [layer.name for layer in model.layers if not isinstance(layer, k.layers.InputLayer)
            and not registry.supports(layer)]

    def annotate(layer):
        return q.quantize_annotate_layer(layer) if layer.name not in left else layer

    custom = _custom_objects(model)
    with k.utils.custom_object_scope(custom):
        annotated = k.models.clone_model(model, clone_function=annotate)
    with q.quantize_scope(custom):
        return q.quantize_apply(annotated), left


def _batches(x, y, ctx: ExportContext, batch_size: int, seed: int):
    k = keras()

    class Batches(k.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            return to_float(x[idx], ctx.preprocessing), y[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return Batches()


def qat_finetune(model, ctx: ExportContext, epochs: int, lr: float, batch_size: int,
                 train_size: int, seed: int = 0):
    """Flatten, annotate and fine-tune ``model`` quantization-aware; returns (QAT model,
    images used, layers tfmot left float).

    Args:
        model: the trained Keras model (softmax output); it is not modified.
        ctx: the export context with ``train_images`` and ``train_labels``.
        epochs, lr, batch_size: the fine-tuning schedule (Adam).
        train_size: use at most this many training images (0: all), drawn deterministically.

    Example:
        >>> qat, n, left_float = qat_finetune(model, ctx, 2, 1e-4, 32, 0)  # doctest: +SKIP
    """
    if ctx.train_images is None or len(ctx.train_images) == 0:
        raise ExportError("tflite-qat-int8 needs training data to fine-tune on: pass --calib DATA "
                          "(its train split is used).")
    x, y = ctx.train_images, np.asarray(ctx.train_labels)
    if train_size and train_size < len(x):
        idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:train_size])
        x, y = x[idx], y[idx]
    k = keras()
    try:
        qat, left = quantize_supported(flatten_model(model))
    except Exception as e:
        msg = first_line(e)
        raise ExportError(f"tflite-qat-int8 cannot quantize this model: {msg}. Use tflite-int8 "
                          "(post-training quantization) instead.") from None
    if left:  # one line, not a traceback: the converter calibrates them post-training
        log.warning("tflite-qat-int8: tfmot cannot annotate %s; left float for QAT (calibrated "
                    "after it)", ", ".join(left))
    qat.compile(optimizer=k.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    qat.fit(_batches(x, y, ctx, batch_size, seed), epochs=epochs, verbose=0)
    return qat, int(len(x)), left


def convert_qat_int8(model, ctx: ExportContext, *, fmt: str, io_type: str = "int8",
                     epochs: int = 2, lr: float = 1e-4, batch_size: int = 32,
                     train_size: int = 2000, **options) -> Artifact:
    """Quantization-aware fine-tuning, then full-integer TFLite conversion.

    Args:
        model: the trained Keras model (nested transfer models are flattened).
        ctx: the export context; needs ``train_images``/``train_labels`` (``--calib``).
        fmt: the format name (``tflite-qat-int8``).
        io_type: input/output type: ``int8``, ``uint8`` or ``float32``.
        epochs, lr, batch_size, train_size: the fine-tuning schedule.

    Example:
        >>> art = convert_qat_int8(model, ctx, fmt="tflite-qat-int8", epochs=1)  # doctest: +SKIP
    """
    model = tf_keras_model(model, fmt)  # tfmot rewrites tf-keras graphs only
    # The format's options (edgeproof.options) are parsed and range-checked already; a
    # direct caller gets the same checks here.
    epochs = check_int("epochs", epochs, fmt, low=1)
    batch_size = check_int("batch_size", batch_size, fmt, low=1)
    train_size = check_int("train_size", train_size, fmt, low=0)
    lr = check_float("lr", lr, fmt, low=0.0, low_open=True)
    qat, n, left = qat_finetune(model, ctx, epochs, lr, batch_size, train_size)
    if ctx.calibration is None or len(ctx.calibration) == 0:
        # Layers left float (unsupported by tfmot) still need activation ranges.
        ctx = dataclasses.replace(ctx, calibration=ctx.train_images[:200],
                                  calibration_info={"split": "train", "n": 200, "first": True})
    recorded = {**options, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                "train_size": train_size, "train_images_used": n}
    art = convert_tflite(qat, ctx, fmt=fmt, mode="int8", io_type=io_type, **recorded)
    if left:
        art.manifest.conversion["qat_float_layers"] = {
            "layers": left, "why": "tfmot's default 8-bit registry cannot annotate them: trained "
                                   "float, quantized by post-training calibration"}
    return art
