"""Exact float rewrites before quantization: fold stand-alone BatchNorms forward, and
equalize weight ranges across layers (Nagel et al. 2019, data-free quantization).

A BatchNormalization that follows an activation or a pooling cannot fold into the conv
before it, so converters keep it as a per-channel scale and shift with its own int8
tensor, and TFLite's quantization debugger ranks exactly that op worst on the lab models.
``fold_batchnorms`` folds it into the layer *after* it instead: ``BN(x) = x * s + t`` per
channel, and the next conv or dense ``W (x * s + t) + b = (W * s) x + (b + W t)``. That is
exact when nothing between them breaks linearity per channel: dropout (inference),
flatten, average pooling, and max pooling when every ``s`` is positive (max of a negatively
scaled channel is its min). A conv with ``same`` padding pads the BatchNorm's *output*
with zeros, which the shift ``t`` must not reach: there ``BN(x) = s (x + t / s)``, so the
scale folds into the conv's weights and a per-channel shift ``x + t / s`` stays before it
(zeros padded after the shift are still zeros after the scale: exact).

``equalize`` rescales each output channel ``i`` of a conv/dense followed (through ReLU,
max pooling, dropout, flatten) by another conv/dense: ``W1[:, i] / r_i``, ``b1[i] / r_i``
and ``W2[i, :] * r_i`` with ``r_i = sqrt(range1_i / range2_i)`` (ReLU and max pooling are
positively homogeneous, so the float function is unchanged), which evens out the
per-channel ranges that per-tensor int8 quantization must share.

Both work on single-chain models (each layer feeds the next), the shape of the lab CNNs
and of most small classifiers; anything else is returned unchanged with the reason.

Example:
    >>> rewritten, record = exact_rewrites(model)  # doctest: +SKIP
    >>> record["fold_batchnorm"]["folded"]  # doctest: +SKIP
    ['bn3 -> conv4', 'bn7 -> dense9']
"""

from __future__ import annotations

import numpy as np

from edgeproof.tfcompat import keras, tf

_LINEAR_PASS = ("Dropout", "Flatten", "AveragePooling2D", "GlobalAveragePooling2D",
                "SpatialDropout2D", "GaussianDropout", "ActivityRegularization")
_POSITIVE_PASS = ("MaxPooling2D", "GlobalMaxPooling2D")  # exact only for positive scales
_CONSUMERS = ("Conv2D", "Dense", "DepthwiseConv2D")
_RELU_PASS = ("ReLU", "MaxPooling2D", "Dropout", "Flatten", "SpatialDropout2D")


def chain(model) -> list | None:
    """The model's layers from input to output when each feeds only the next (else None)."""
    k = keras()
    if not isinstance(model, k.Model):  # a Keras 3 model or a graph: nothing to rewrite here
        return None
    layers = [layer for layer in model.layers if not isinstance(layer, k.layers.InputLayer)]
    if isinstance(model, k.Sequential):
        return layers if not any(isinstance(layer, k.Model) for layer in layers) else None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    for prev, layer in zip([None] + layers[:-1], layers):
        if isinstance(layer, k.Model) or len(layer._inbound_nodes) != 1:
            return None
        inbound = layer._inbound_nodes[0].inbound_layers
        inbound = inbound if isinstance(inbound, list) else [inbound]
        if prev is not None and inbound != [prev]:
            return None
    return layers


def _bn_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel of an inference-mode BatchNormalization."""
    w = {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in bn.weights}
    var, mean = w["moving_variance"], w["moving_mean"]
    gamma, beta = w.get("gamma", np.ones_like(var)), w.get("beta", np.zeros_like(var))
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale.astype(np.float64), (beta - mean * scale).astype(np.float64)


def _channels_last(bn) -> bool:
    rank = len(bn.input_shape)
    axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    return [a % rank for a in axes] == [rank - 1]


def _fold_target(layers, i: int, scale) -> tuple[int | None, str]:
    """The index of the layer BN ``layers[i]`` folds into, or None and why not."""
    for j in range(i + 1, len(layers)):
        name = type(layers[j]).__name__
        if name in _LINEAR_PASS:
            continue
        if name in _POSITIVE_PASS:
            if (scale > 0).all():
                continue
            return None, f"a negative scale before {layers[j].name} (max pooling)"
        if name in _CONSUMERS:
            if getattr(layers[j], "padding", "valid") != "valid" and \
                    (np.abs(scale) < 1e-6).any():
                return None, f"{layers[j].name} pads 'same' and a scale is ~0 (no shift t/s)"
            return j, ""
        return None, f"{layers[j].name} ({name}) follows it"
    return None, "nothing after it to fold into"


def _spatial(layers, i: int, j: int) -> int:
    """How many positions per channel a Flatten between i and j lays out (1 without one)."""
    for layer in layers[i:j]:
        if type(layer).__name__ == "Flatten":
            shape = layer.input_shape
            return int(np.prod(shape[1:-1]))
    return 1


def _folded_weights(consumer, scale, shift, positions: int) -> list[np.ndarray]:
    """The consumer's (kernel, bias) with ``x * scale + shift`` folded into its input (for
    a ``same``-padded conv only the scale: its shift stays before it, ``_shift_class``)."""
    kernel = consumer.get_weights()[0].astype(np.float64)
    bias = consumer.get_weights()[1].astype(np.float64) if consumer.use_bias else None
    kind = type(consumer).__name__
    if getattr(consumer, "padding", "valid") != "valid":
        shift = np.zeros_like(shift)
    if kind == "Dense":
        s, t = np.tile(scale, positions), np.tile(shift, positions)
        new_k, extra = kernel * s[:, None], t @ kernel
    elif kind == "DepthwiseConv2D":
        new_k = kernel * scale[None, None, :, None]
        extra = np.einsum("hwcm,c->cm", kernel, shift).reshape(-1)
    else:
        new_k = kernel * scale[None, None, :, None]
        extra = np.einsum("hwio,i->o", kernel, shift)
    new_b = extra if bias is None else bias + extra
    return [new_k.astype(np.float32), new_b.astype(np.float32)]


def fold_batchnorms(model) -> tuple[object, dict]:
    """``model`` with every foldable stand-alone BatchNorm folded into the layer after it.

    Returns (model, ``{"folded": ["bn -> conv", ...], "skipped": {bn: why}}``); the model
    itself when nothing folds.
    """
    layers = chain(model)
    if layers is None:
        return model, {"folded": [], "skipped": {}, "not_applied": "not a single chain"}
    weights, drop, shifts, folded, skipped = {}, set(), {}, [], {}
    for i, layer in enumerate(layers):
        if type(layer).__name__ != "BatchNormalization" or not _channels_last(layer):
            continue
        scale, shift = _bn_affine(layer)
        j, why = _fold_target(layers, i, scale)
        if j is None or layers[j].name in weights:
            skipped[layer.name] = why or f"{layers[j].name} already takes another fold"
            continue
        weights[layers[j].name] = _folded_weights(layers[j], scale, shift, _spatial(layers, i, j))
        drop.add(layer.name)
        if getattr(layers[j], "padding", "valid") != "valid":
            shifts[layer.name] = (shift / scale).astype(np.float32)
        folded.append(f"{layer.name} -> {layers[j].name}" + (" (shift kept)" if layer.name in
                                                              shifts else ""))
    if not folded:
        return model, {"folded": [], "skipped": skipped}
    return rebuild(model, layers, drop, weights, shifts), {"folded": folded, "skipped": skipped}


def _shift_class():
    k, t = keras(), tf()

    class ChannelShift(k.layers.Layer):
        """``x + shift`` per channel: what stays of a BatchNorm folded into a 'same' conv."""

        def __init__(self, shift, **kw):
            super().__init__(**kw)
            self.shift = t.constant(np.asarray(shift, np.float32))

        def call(self, x):
            return x + self.shift

        def get_config(self):  # rebuilt again by a later rewrite (equalize)
            return {**super().get_config(), "shift": self.shift.numpy().tolist()}

    return ChannelShift


def rebuild(model, layers, drop: set, weights: dict, shifts: dict | None = None):
    """A new functional model of the chain ``layers`` without ``drop``, each layer a fresh
    copy (the source model is not touched) with ``weights[name]`` where given, and a
    ``ChannelShift`` in place of a dropped layer named in ``shifts``."""
    k = keras()
    inp = k.Input(tuple(model.inputs[0].shape[1:]), name=model.inputs[0].name.split(":")[0])
    x, made = inp, []
    for layer in layers:
        if layer.name in (shifts or {}):
            x = _shift_class()(shifts[layer.name], name=f"{layer.name}_shift")(x)
            continue
        if layer.name in drop:
            continue
        config = layer.get_config()
        if layer.name in weights and "use_bias" in config:
            config["use_bias"] = True
        copy = type(layer).from_config(config)
        x = copy(x)
        made.append((copy, weights.get(layer.name, layer.get_weights())))
    out = k.Model(inp, x, name=model.name)
    for copy, w in made:
        copy.set_weights(w)
    return out


def _relu_like(layer) -> bool:
    """An output that is ``relu`` (or linear) in each channel: positively homogeneous."""
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "linear") in ("relu", "linear")


def _pairs(layers) -> list[tuple[int, int, int]]:
    """(i, j, positions): consumer ``j`` reads producer ``i``'s channels through ReLU, max
    pooling, dropout or flatten only (``positions`` per channel after a Flatten)."""
    out = []
    for i, layer in enumerate(layers):
        if type(layer).__name__ not in ("Conv2D", "Dense") or not _relu_like(layer):
            continue
        for j in range(i + 1, len(layers)):
            name = type(layers[j]).__name__
            if name in ("Conv2D", "Dense"):
                out.append((i, j, _spatial(layers, i, j)))
                break
            if name not in _RELU_PASS or (name == "ReLU" and layers[j].get_config().get(
                    "negative_slope")):
                break
    return out


def equalize(model, rounds: int = 4) -> tuple[object, dict]:
    """``model`` with cross-layer equalized weight ranges (the float function unchanged).

    Returns (model, ``{"pairs": ["conv0 ~ conv1", ...]}``); the model itself when it has
    no pair to equalize.
    """
    layers = chain(model)
    if layers is None:
        return model, {"pairs": [], "not_applied": "not a single chain"}
    pairs = _pairs(layers)
    if not pairs:
        return model, {"pairs": []}
    w = {layer.name: [a.astype(np.float64) for a in layer.get_weights()] for layer in layers}
    for _ in range(rounds):  # a layer in two pairs moves twice: iterate to a fixed point
        for i, j, positions in pairs:
            _equalize_pair(w[layers[i].name], w[layers[j].name], positions,
                           type(layers[j]).__name__ == "Dense")
    weights = {name: [a.astype(np.float32) for a in ws] for name, ws in w.items()}
    names = [f"{layers[i].name} ~ {layers[j].name}" for i, j, _ in pairs]
    return rebuild(model, layers, set(), weights), {"pairs": names}


def _equalize_pair(w1: list, w2: list, positions: int, dense2: bool) -> None:
    """Rescale output channel c of (w1) by 1/r_c and input channel c of (w2) by r_c."""
    k1 = w1[0]
    c = k1.shape[-1]
    range1 = np.abs(k1.reshape(-1, c)).max(axis=0)
    k2 = w2[0]
    if dense2:
        by_channel = np.abs(k2).reshape(positions, c, -1)
        range2 = by_channel.max(axis=(0, 2))
    else:
        range2 = np.abs(k2).max(axis=(0, 1, 3))
    ok = (range1 > 0) & (range2 > 0)
    r = np.where(ok, np.sqrt(np.where(ok, range1 / np.where(ok, range2, 1), 1)), 1.0)
    w1[0] = k1 / r
    if len(w1) > 1:
        w1[1] = w1[1] / r
    w2[0] = (k2 * np.tile(r, positions)[:, None]) if dense2 else k2 * r[None, None, :, None]


def exact_rewrites(model, steps=("fold_batchnorm", "equalize")) -> tuple[object, dict]:
    """The rewrites ``steps`` in order; returns (model, record per step).

    Example:
        >>> model2, record = exact_rewrites(model)  # doctest: +SKIP
    """
    record = {}
    for step in steps:
        model, record[step] = {"fold_batchnorm": fold_batchnorms,
                               "equalize": equalize}[step](model)
    return model, record
