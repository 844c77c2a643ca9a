"""The loaded reference model, whatever its kind: one object every command compares with.

``Reference`` says what the model is (``kind``: tf_keras, keras3, saved_model, onnx), how
to run it (``predict``: float NHWC batches in, probabilities out; ``tf_call`` for the
TensorFlow kinds), what it takes (input shape, its own layout, class count), what its
graph shows about preprocessing (``evidence``), whether it outputs logits (then
``predict`` and ``tf_call`` apply softmax, and every export says so in its manifest),
whether gradients are available, and a fingerprint. Loading a file is
``edgeproof.reference.load_reference``; this module holds the object and the Keras kinds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError
from edgeproof.keras_loader import RAW_PIXEL_SCALE, detect_preprocessing, is_keras3_model
from edgeproof.tfcompat import tf

KINDS = {"tf_keras": "a tf-keras 2 model", "keras3": "a Keras 3 model",
         "saved_model": "a SavedModel", "onnx": "an ONNX model",
         "torch_export": "a torch.export program", "torchscript": "a TorchScript module"}
RAW = "it takes raw 0-255 pixels"


@dataclass
class Reference:
    """A reference model of any kind, loaded.

    Attributes:
        path: the file or folder it was loaded from (None for a live model).
        kind: ``tf_keras``, ``keras3``, ``saved_model``, ``onnx``, ``torch_export`` (a
            ``.pt2``) or ``torchscript``.
        name: the model's name (a Keras name, else the file's stem).
        input_shape: ``(H, W, C)`` of the float NHWC batches ``predict`` takes.
        num_classes: the length of its output.
        input_name: the input tensor's name in the model.
        layout: the model's own input layout, ``NHWC`` or ``NCHW`` (PyTorch, its ONNX);
            ``predict`` transposes for NCHW itself.
        outputs_logits: the model ends in logits: ``predict``/``tf_call`` apply softmax.
        output_why: how ``outputs_logits`` was decided.
        evidence: ``(scale, offset, why)`` read off the model's first layers or ops, or None.
        has_gradients: gradients flow through ``tf_call`` (not through ONNX Runtime).
        model: the live Keras model (tf-keras or Keras 3), else None.
        tf_call: TensorFlow NHWC tensor -> probabilities tensor (TensorFlow kinds).
        signature_key: the SavedModel serving signature used.
        version: the Keras version that wrote the file, or the ONNX producer.
        extras: objects kept alive with it (the loaded SavedModel, the ONNX session) and
            facts (opset, batch size).

    Example:
        >>> ref = load_reference("my_model.keras")  # doctest: +SKIP
        >>> ref.kind, ref.predict(x).shape  # doctest: +SKIP
        ('keras3', (8, 10))
    """

    path: Path | None
    kind: str
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    input_name: str
    predict_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    layout: str = "NHWC"
    outputs_logits: bool = False
    output_why: str = "its last layer is a softmax"
    evidence: tuple[float, float, str] | None = None
    has_gradients: bool = False
    model: object = field(default=None, repr=False)
    tf_call: Callable | None = field(default=None, repr=False)
    signature_key: str | None = None
    version: str | None = None
    extras: dict = field(default_factory=dict, repr=False)
    fingerprint: str | None = None

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities (N, classes) for float32 NHWC ``x`` already preprocessed.

        Example:
            >>> ref.predict(to_float(images, pre)).sum(1)  # doctest: +SKIP
            array([1., 1.], dtype=float32)
        """
        x = np.asarray(x, np.float32)
        if not len(x):
            return np.zeros((0, self.num_classes), np.float32)
        step = self.extras.get("batch") or batch_size
        return np.concatenate([np.asarray(self.predict_fn(x[i:i + step]), np.float32)
                               for i in range(0, len(x), step)])

    def describe(self) -> str:
        """What it is, for messages.

        Example:
            >>> load_reference("model.keras").describe()  # doctest: +SKIP
            'model.keras (a Keras 3 model, keras 3.15.1)'
        """
        what = KINDS[self.kind] + (f", {self.version}" if self.version else "")
        return f"{self.path.name if self.path else self.name} ({what})"

    @property
    def exportable(self):
        """What converters take: the tf-keras model itself (tf-keras graph rewrites and QAT
        apply to it), else this Reference."""
        return self.model if self.kind == "tf_keras" else self

    def sha256(self) -> str:
        """The fingerprint: sha256 of the weights (Keras) or of the file / folder.

        Example:
            >>> len(load_reference("model.onnx").sha256())  # doctest: +SKIP
            64
        """
        if self.fingerprint is None and self.model is not None:
            self.fingerprint = weights_sha256(self.model)
        return self.fingerprint or ""

    def tf_keras_model(self, what: str, error=ModelError):
        """The tf-keras model, for what only tf-keras can do (QAT, graph rewrites).

        Raises:
            ``error``: naming ``what``, the model's kind and what to do instead.

        Example:
            >>> load_reference("k3.keras").tf_keras_model("QAT")  # doctest: +SKIP
            Traceback (most recent call last):
            ...
            edgeproof.errors.ModelError: QAT needs a tf-keras model; k3.keras (a Keras 3 model, ...
        """
        if self.kind == "tf_keras":
            return self.model
        raise error(f"{what} needs a tf-keras model; {self.describe()} is not one. Use the "
                    "other formats (tflite-int8 calibrates without retraining).")


def weights_sha256(model) -> str:
    """sha256 over a Keras model's weights (either Keras): identifies the source of exports.

    Example:
        >>> len(weights_sha256(keras().Sequential([keras().Input((2,)), keras().layers.Dense(1)])))  # doctest: +SKIP
        64
    """
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def evidence_from_ops(ops: list[tuple[str, object]]) -> tuple[float, float, str] | None:
    """Pixel preprocessing read off a graph's first ops, or None when they do not tell.

    ``ops`` are ``(op type, constant)`` from the input onwards. A multiplication by a
    constant below 0.1 (or a division by one above 10) is a Rescaling(1/255)-style
    scale: raw pixels in. A subtraction of a mean within [0, 1] (an in-graph
    ImageNet-style normalisation) means inputs in [0, 1]: pixels * 1/255.

    Example:
        >>> evidence_from_ops([("Mul", 0.00392157), ("AddV2", 0.0)])[:2]
        (1.0, 0.0)
        >>> evidence_from_ops([("Sub", [0.485, 0.456, 0.406]), ("Div", [0.229, 0.224, 0.225])])[:2]
        (0.00392156862745098, 0.0)
    """
    for op, const in ops:
        if const is None:
            return None
        v = np.abs(np.asarray(const, np.float64).ravel())
        if not v.size:
            return None
        if op in ("Mul", "Div", "RealDiv"):
            scale = float(v.max()) if op == "Mul" else 1.0 / float(v.min() or np.inf)
            if 0 < scale < RAW_PIXEL_SCALE:
                return 1.0, 0.0, f"the first op ({op}) scales the input by {scale:.6g}: {RAW}"
            return None
        if op in ("Sub", "Add", "AddV2"):
            if v.max() == 0:
                continue  # Rescaling's offset 0: look further
            if v.max() <= 1.0 and op == "Sub":
                return (1 / 255, 0.0, f"the first op subtracts a mean of {float(v.mean()):.3g} "
                        "(an in-graph normalisation of [0, 1] inputs): pixels * 1/255")
            return None
        return None
    return None


def _softmax_layer(layer) -> bool:
    name = type(layer).__name__
    if name == "Softmax":
        return True
    act = layer.get_config().get("activation") if hasattr(layer, "get_config") else None
    return act == "softmax" or getattr(act, "__name__", None) == "softmax"


def _probe_io(model, path) -> tuple[tuple[int, int, int], int]:
    label = path or getattr(model, "name", "the model")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{label} has {len(model.inputs)} inputs and {len(model.outputs)} "
                         "outputs; edgeproof takes image classifiers with one of each.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ModelError(f"{label} takes input {list(shape)}; edgeproof takes images of a fixed "
                         "size (N, H, W, C): rebuild it with keras.Input((H, W, C)).")
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(model.outputs[0].shape[-1])


def keras_reference(model, path: str | Path | None = None, version: str | None = None,
                    fingerprint: bool = True) -> Reference:
    """A ``Reference`` around a live Keras model (tf-keras 2 or Keras 3).

    A Keras 3 model whose last layer is no softmax outputs logits: softmax is applied.
    tf-keras models are taken as they are (edgeproof's own end in softmax).

    Example:
        >>> keras_reference(create_model("small_cnn", 10, (32, 32, 1))).kind  # doctest: +SKIP
        'tf_keras'
    """
    t = tf()
    shape, n = _probe_io(model, path)
    k3 = is_keras3_model(model)
    logits = k3 and not _softmax_layer(model.layers[-1])

    def call(x):
        y = model(x, training=False)
        return t.nn.softmax(y) if logits else y

    fast = t.function(call, reduce_retracing=True)
    why = detect_preprocessing(model)
    p = Path(path) if path is not None else None
    return Reference(
        path=p, kind="keras3" if k3 else "tf_keras", name=model.name, input_shape=shape,
        num_classes=n, input_name=model.inputs[0].name.split(":")[0],
        predict_fn=lambda x: fast(t.constant(x)).numpy(), outputs_logits=logits,
        output_why=(f"its last layer ({type(model.layers[-1]).__name__}) has no softmax: logits"
                    if logits else "its last layer is a softmax"),
        evidence=(1.0, 0.0, why) if why else None, has_gradients=True, model=model,
        tf_call=call, version=f"keras {version}" if version else None,
        fingerprint=weights_sha256(model) if fingerprint else None)


def reference_from_model(model) -> Reference:
    """A ``Reference`` for a live model or one already loaded (returned as is); cheap: the
    weights are hashed only when ``sha256()`` asks.

    Example:
        >>> reference_from_model(model).kind  # doctest: +SKIP
        'tf_keras'
    """
    if isinstance(model, Reference):
        return model
    return keras_reference(model, fingerprint=False)
