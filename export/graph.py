"""Keras graph rewrites before conversion: inline nested models, and replace layers a
converter or delegate handles badly with exact equivalents.

``flatten_model`` inlines nested models (a Keras Application base inside a Sequential)
into one functional graph reusing the same layers; tfmot's ``quantize_model`` needs it.

``int8_friendly`` rewrites every ``AveragePooling2D`` as a depthwise convolution with
weights ``1 / (kh * kw)`` followed, for ``same`` padding, by a constant per-position
factor ``kh * kw / (number of real pixels under the window)``: exactly the same float
function (TensorFlow's ``same`` average pooling leaves padded pixels out of the mean).
Why: LiteRT's XNNPACK delegate has no int8 ``AVERAGE_POOL_2D``, so each one stays on a
builtin kernel and splits the int8 graph (InceptionV3: 9 pools, 10 XNNPACK partitions),
while int8 ``DEPTHWISE_CONV_2D`` and ``MUL`` are delegated. The rewritten model is only
converted, never saved.

Example:
    >>> converted_from, rewrites = int8_friendly(model)  # doctest: +SKIP
    >>> rewrites  # doctest: +SKIP
    {'AveragePooling2D->DepthwiseConv2D*correction': 9}
"""

from __future__ import annotations

import numpy as np

from edgeproof.tfcompat import keras, tf


def _call(layer, x, replace, inference):
    """Apply ``layer`` (or its replacement) to ``x``, inlining nested models layer by layer."""
    k = keras()
    if not isinstance(layer, k.Model):
        return (replace(layer) or layer)(x)
    if isinstance(layer, k.Sequential):
        for sub in layer.layers:
            x = _call(sub, x, replace, inference)
        return x
    return _call_functional(layer, x, replace, inference)


def _call_functional(model, inputs, replace, inference):
    # Mirrors tf_keras Functional._run_internal_graph, but recurses into nested models.
    usage = model._tensor_usage_count
    flat_in = tf().nest.flatten(inputs)
    tensors = {str(id(t)): [v] * usage[str(id(t))] for t, v in zip(model.inputs, flat_in)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                continue
            args, kwargs = node.map_arguments(tensors)
            if inference:  # a graph for conversion runs in inference mode anyway
                kwargs = {k: v for k, v in kwargs.items() if k != "training"}
            if isinstance(node.layer, keras().Model) and not kwargs and len(args) == 1:
                outputs = _call(node.layer, args[0], replace, inference)
            else:
                outputs = (replace(node.layer) or node.layer)(*args, **kwargs)
            for out_id, y in zip(node.flat_output_ids, tf().nest.flatten(outputs)):
                tensors[out_id] = [y] * usage[out_id]
    outs = [tensors[str(id(t))].pop() for t in model.outputs]
    return outs[0] if len(outs) == 1 else outs


def flatten_model(model, replace=None, inference: bool = False):
    """A functional copy of ``model`` with every nested model inlined (weights copied).

    Args:
        model: a single-input Keras model, possibly with nested Sequential/functional models.
        replace: ``replace(layer)`` returns a layer to call instead, or None to keep it.
        inference: also inline nested models called with ``training=...`` (a frozen
            base); the copy is then for inference only (conversion), not for training.

    Example:
        >>> flat = flatten_model(model)  # doctest: +SKIP
        >>> any(isinstance(l, keras().Model) for l in flat.layers)  # doctest: +SKIP
        False
    """
    k = keras()
    clone = k.models.clone_model(model)  # the source model's layers stay untouched
    clone.set_weights(model.get_weights())
    inp = k.Input(tuple(model.inputs[0].shape[1:]), name="image")
    return k.Model(inp, _call(clone, inp, replace or (lambda layer: None), inference),
                   name=f"{model.name}_flat")


def _all_layers(model):
    k = keras()
    for layer in model.layers:
        yield layer
        if isinstance(layer, k.Model):
            yield from _all_layers(layer)


def _same_padding_correction(h: int, w: int, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """``kh * kw / count`` per output position of a ``same`` pool over an h x w map."""
    t = tf()
    ones = t.ones((1, h, w, 1))
    counts = t.nn.depthwise_conv2d(ones, t.ones((kh, kw, 1, 1)), [1, sh, sw, 1], "SAME")
    return (kh * kw / counts.numpy()).astype(np.float32)


def _depthwise_average_class():
    k, t = keras(), tf()

    class DepthwiseAverage(k.layers.Layer):
        """``AveragePooling2D`` as depthwise conv (+ border correction): same float output."""

        def __init__(self, pool, **kw):
            super().__init__(name=f"{pool.name}_as_depthwise", **kw)
            self.pool_size, self.strides = tuple(pool.pool_size), tuple(pool.strides)
            self.padding = pool.padding.upper()

        def build(self, shape):
            kh, kw = self.pool_size
            self.kernel = t.constant(np.full((kh, kw, int(shape[-1]), 1), 1.0 / (kh * kw),
                                             np.float32))
            self.bias = t.zeros([int(shape[-1])])  # int8 depthwise kernels take a bias
            self.correction = None
            if self.padding == "SAME":
                corr = _same_padding_correction(int(shape[1]), int(shape[2]), kh, kw,
                                                *self.strides)
                if not np.allclose(corr, 1.0):
                    self.correction = t.constant(corr)

        def call(self, x):
            y = t.nn.bias_add(t.nn.depthwise_conv2d(x, self.kernel, [1, *self.strides, 1],
                                                    self.padding), self.bias)
            return y if self.correction is None else y * self.correction

    return DepthwiseAverage


def int8_friendly(model):
    """``model`` with its ``AveragePooling2D`` layers rewritten for int8 delegation.

    Returns (the model to convert, ``{rewrite: count}``); the model itself when it has
    nothing to rewrite (and an empty dict).
    """
    k = keras()
    pools = [layer for layer in _all_layers(model) if type(layer) is k.layers.AveragePooling2D
             and layer.data_format == "channels_last"]
    if not pools:
        return model, {}
    cls = _depthwise_average_class()

    def replace(layer):  # flatten_model works on a clone: match the pools by type
        return cls(layer) if type(layer) is k.layers.AveragePooling2D else None

    rewritten = flatten_model(model, replace, inference=True)
    return rewritten, {"AveragePooling2D->DepthwiseConv2D*correction": len(pools)}
