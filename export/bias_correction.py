"""Bias correction: undo the mean output shift that int8 weights put on each layer.

Rounding a layer's weights to int8 (per output channel, symmetric: the scheme of TFLite's
and ONNX Runtime's int8 convolutions) changes its output by ``(W_q - W) x``, and that error
has a mean per output channel that the next layers carry forward (Nagel et al. 2019,
"empirical bias correction"; NNCF applies a fast variant by default). Here the mean is
measured on the calibration images: the float model's input to each conv / dense layer
is run through the weight error alone, averaged per output channel, and subtracted from
the layer's bias. Unlike the rewrites of ``export.rewrites`` this changes the float
model (by design: it pre-compensates the quantized one), so it is recorded with the
float outputs' change.

Example:
    >>> corrected, record = correct_biases(model, ctx.calibration_float())  # doctest: +SKIP
    >>> record["layers"][:1]  # doctest: +SKIP
    [{'layer': 'conv0', 'max_shift': 0.0123}]
"""

from __future__ import annotations

import numpy as np

from edgeproof.export.rewrites import chain, rebuild
from edgeproof.tfcompat import keras, tf


def fake_quantize(kernel: np.ndarray, bits: int = 8) -> np.ndarray:
    """Symmetric per-output-channel (last axis) quantize-dequantize of ``kernel``.

    Example:
        >>> fake_quantize(np.array([[0.5, -1.0], [0.25, 0.3]])).round(4).tolist()
        [[0.5, -1.0], [0.252, 0.2992]]
    """
    levels = 2 ** (bits - 1) - 1
    flat = kernel.reshape(-1, kernel.shape[-1])
    scale = np.abs(flat).max(axis=0) / levels
    scale = np.where(scale > 0, scale, 1.0)
    return (np.round(kernel / scale) * scale).astype(kernel.dtype)


def _weight_error_output(layer, x, error: np.ndarray) -> np.ndarray:
    """The layer's output from ``x`` through the weight error alone (no bias, no
    activation), as float64."""
    t = tf()
    kind = type(layer).__name__
    e = t.constant(error.astype(np.float32))
    if kind == "Dense":
        return np.asarray(t.matmul(t.reshape(x, [-1, error.shape[0]]), e), np.float64)
    strides = [1, *layer.strides, 1]
    if kind == "DepthwiseConv2D":
        return np.asarray(t.nn.depthwise_conv2d(x, e, strides, layer.padding.upper(),
                                                dilations=layer.dilation_rate), np.float64)
    return np.asarray(t.nn.conv2d(x, e, strides, layer.padding.upper(),
                                  dilations=layer.dilation_rate), np.float64)


def _kept_float(layer, names) -> bool:
    """Whether a converter's tensor / node name of ``names`` belongs to ``layer`` (their
    names carry the Keras layer's as a path part: ``model/conv5/Relu;…``)."""
    return any(f"/{layer.name}/" in n or n.endswith(f"/{layer.name}") for n in names)


def correct_biases(model, x: np.ndarray, limit: int = 200,
                   keep_float=()) -> tuple[object, dict]:
    """``model`` with each conv / dense bias corrected for its int8 weights' mean error,
    measured on the float inputs ``x`` (the calibration images; at most ``limit``).
    Layers named in ``keep_float`` (converter tensor / node names) stay float in the
    export, so they keep their bias: correcting it would add the error it cancels.

    Returns (model, ``{"layers": [{layer, max_shift}], "images": n}``); the model itself
    when it is not a single chain.
    """
    layers = chain(model)
    if layers is None:
        return model, {"layers": [], "not_applied": "not a single chain"}
    k = keras()
    x = x[:limit]
    weights, record = {}, []
    for i, layer in enumerate(layers):
        if type(layer).__name__ not in ("Conv2D", "Dense", "DepthwiseConv2D") or \
                getattr(layer, "groups", 1) != 1 or _kept_float(layer, keep_float):
            continue
        kernel = layer.get_weights()[0]
        feed = x if i == 0 else k.Model(model.inputs, layers[i - 1].output)(x, training=False)
        error = fake_quantize(kernel) - kernel
        shift = _weight_error_output(layer, feed, error)
        shift = shift.reshape(-1, shift.shape[-1]).mean(axis=0)
        bias = layer.get_weights()[1] if layer.use_bias else np.zeros(shift.shape, np.float32)
        weights[layer.name] = [kernel, (bias - shift).astype(np.float32)]
        record.append({"layer": layer.name, "max_shift": round(float(np.abs(shift).max()), 6)})
    if not weights:
        return model, {"layers": [], "images": len(x)}
    return rebuild(model, layers, set(), weights), {"layers": record, "images": len(x)}
