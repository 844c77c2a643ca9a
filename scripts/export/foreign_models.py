"""Models made the way other people make them, for the "Models from Keras 3 and PyTorch"
evidence (docs/EXPORT.md) and the tests of the core loader: no edgeproof involved.

``keras3``: a CNN built and trained by Keras 3 (``import keras``, the default Keras of
TensorFlow 2.16+) in a process where ``TF_USE_LEGACY_KERAS`` is unset, with a
``Rescaling(1/255)`` first layer and BatchNormalization, trained on raw 0-255 pixels; it
writes ``model.keras`` (``model.save``), ``savedmodel/`` (``model.export()``),
``model.onnx`` (``model.export(format="onnx", opset_version=17)``), ``predictions.npz``
(this process's own probabilities on the first test images, raw pixels in) and, with
``--custom``, ``custom.keras`` (a layer registered only in this process).

``torch-onnx``: an NCHW ONNX graph as PyTorch's exporter writes a small classifier
(``input`` [N, C, H, W] -> Conv, Relu, MaxPool, Conv, Relu, MaxPool, Flatten, Gemm:
logits; the ``ToTensor()`` scaling to [0, 1] happens outside the graph), built with
``onnx.helper``: random He-initialised convolutions and a Gemm fitted by logistic
regression on the train split, so it classifies well above chance. ``--static-batch``
writes batch 1 (no ``dynamic_axes``).

Data: an ``.npz`` with ``x_train, y_train, x_test, y_test`` (uint8 NHWC images).

Usage:
    python scripts/export/foreign_models.py keras3 --data ../shared/datasets/cifar10.npz \
        --out /tmp/k3 --epochs 3
    python scripts/export/foreign_models.py torch-onnx --data digits16.npz --out /tmp/torch
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.pop("TF_USE_LEGACY_KERAS", None)  # Keras 3: read when TensorFlow is imported
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _data(path: str, limit: int | None):
    with np.load(path) as z:
        x, y = z["x_train"], z["y_train"].reshape(-1).astype(np.int64)
        xt = z["x_test"]
    if limit and limit < len(y):
        keep = np.random.default_rng(0).permutation(len(y))[:limit]
        x, y = x[keep], y[keep]
    return x, y, xt


def keras3_models(args) -> dict:
    """Build, train and save the Keras 3 model in its three forms; returns what was done."""
    import keras
    import tensorflow as tf

    assert not tf.keras.__name__.startswith("tf_keras"), "this must run with Keras 3"
    keras.utils.set_random_seed(args.seed)
    x, y, xt = _data(args.data, args.limit)
    n_classes, (f1, f2) = int(y.max()) + 1, (int(v) for v in args.filters.split(","))
    L = keras.layers
    inp = keras.Input(x.shape[1:], name="image")
    h = L.Rescaling(1 / 255)(inp)
    for f in (f1, f2):
        h = L.Conv2D(f, 3, padding="same", use_bias=False)(h)
        h = L.ReLU()(L.BatchNormalization(momentum=0.9)(h))
        h = L.MaxPooling2D()(h)
    h = L.Dropout(0.2)(L.Flatten()(h))
    model = keras.Model(inp, L.Dense(n_classes, activation="softmax")(h), name="k3_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.time()
    hist = model.fit(x.astype(np.float32), y, epochs=args.epochs, batch_size=64, verbose=2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    model.export(str(out / "savedmodel"), verbose=False)
    model.export(str(out / "model.onnx"), format="onnx", opset_version=17, verbose=False)
    first = xt[:256].astype(np.float32)
    np.savez(out / "predictions.npz", x=xt[:256], probs=model.predict(first, verbose=0))
    if args.custom:
        @keras.saving.register_keras_serializable(package="mine")
        class Doubler(L.Layer):
            def call(self, v):
                return v * 2.0

        c_in = keras.Input(x.shape[1:])
        c_out = L.Dense(n_classes)(L.Flatten()(Doubler()(c_in)))
        keras.Model(c_in, c_out).save(out / "custom.keras")
    return {"keras": keras.__version__, "backend": keras.backend.backend(),
            "fit_seconds": round(time.time() - t0, 1), "epochs": args.epochs,
            "train_images": int(len(y)),
            "train_accuracy": float(hist.history["accuracy"][-1])}


def _conv_weights(rng, out_c: int, in_c: int) -> np.ndarray:
    return (rng.standard_normal((out_c, in_c, 3, 3)) * np.sqrt(2 / (9 * in_c))).astype(np.float32)


def _graph(shape, weights: dict, head: tuple | None, static_batch: bool):
    """The PyTorch-style graph; without ``head`` it ends at the flattened features."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c, h, w = shape
    nodes = [helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"],
                              pads=[1, 1, 1, 1], name="/conv1/Conv"),
             helper.make_node("Relu", ["c1"], ["r1"], name="/relu1/Relu"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2],
                              name="/pool1/MaxPool"),
             helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"],
                              pads=[1, 1, 1, 1], name="/conv2/Conv"),
             helper.make_node("Relu", ["c2"], ["r2"], name="/relu2/Relu"),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2],
                              name="/pool2/MaxPool"),
             helper.make_node("Flatten", ["p2"], ["features"], axis=1, name="/Flatten")]
    out = "features"
    if head is not None:
        weights = {**weights, "fc.weight": head[0], "fc.bias": head[1]}
        nodes.append(helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"],
                                      transB=1, name="/fc/Gemm"))
        out = "logits"
    batch = 1 if static_batch else "N"
    graph = helper.make_graph(
        nodes, "torch_style_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, c, h, w])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                       [batch, len(head[1]) if head else None])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnx.helper (PyTorch-style)")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def torch_onnx(args) -> dict:
    """The PyTorch-style NCHW graph with a fitted head; returns what was done."""
    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(args.seed)
    x, y, _ = _data(args.data, args.limit)
    f1, f2 = (int(v) for v in args.filters.split(","))
    shape = (x.shape[3], x.shape[1], x.shape[2])
    weights = {"conv1.weight": _conv_weights(rng, f1, shape[0]),
               "conv1.bias": np.zeros(f1, np.float32),
               "conv2.weight": _conv_weights(rng, f2, f1), "conv2.bias": np.zeros(f2, np.float32)}
    feats = ort.InferenceSession(_graph(shape, weights, None, False).SerializeToString(),
                                 providers=["CPUExecutionProvider"])
    nchw = (x.astype(np.float32) / 255).transpose(0, 3, 1, 2)  # ToTensor(): [0, 1], NCHW
    f = np.concatenate([feats.run(None, {"input": nchw[i:i + 256]})[0]
                        for i in range(0, len(x), 256)])
    clf = LogisticRegression(max_iter=300).fit(f, y)
    head = (clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import onnx

    onnx.save(_graph(shape, weights, head, args.static_batch), str(out / "model.onnx"))
    return {"features": int(f.shape[1]), "train_accuracy": float(clf.score(f, y)),
            "static_batch": bool(args.static_batch)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["keras3", "torch-onnx"])
    p.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--filters", default="32,64", help="two conv widths, e.g. 8,16")
    p.add_argument("--limit", type=int, default=None, help="train on N images (a sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--custom", action="store_true", help="keras3: also custom.keras")
    p.add_argument("--static-batch", action="store_true", help="torch-onnx: batch fixed at 1")
    args = p.parse_args(argv)
    done = keras3_models(args) if args.kind == "keras3" else torch_onnx(args)
    print(json.dumps({"kind": args.kind, **done}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
