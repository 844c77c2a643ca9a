"""Keras / TensorFlow: the reference. The only runtime that imports TensorFlow.

It runs tf-keras 2 and Keras 3 files (``.keras`` / ``.h5``) and SavedModel folders (tf-keras'
own, Keras 3 ``export()``, ``tf.saved_model.save``): tf-keras files load with tf-keras as
always; the other kinds through the core loader (``edgeproof.reference``), whose serving
call (softmax included for logits) is what runs. An ONNX file runs on ``onnxruntime``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeproof.bench.runtimes.base import Option, Runtime, register_runtime
from edgeproof.bench.threads import cores
from edgeproof.errors import RuntimeFailure
from edgeproof.keras_loader import (KERAS_SUFFIXES, keras3, keras_file_version, keras_major,
                                    load_keras_model)
from edgeproof.reference import Reference, load_reference
from edgeproof.tfcompat import tf

_HDF5 = b"\x89HDF\r\n\x1a\n"


def _kind(source) -> str | None:
    """``tf_keras`` for what tf-keras loads itself, ``keras3`` / ``saved_model`` for what the
    core loader loads, None for a live model or a Reference."""
    if not isinstance(source, (str, Path)):
        return None
    p = Path(source)
    if p.is_dir():
        return "tf_keras" if (p / "keras_metadata.pb").exists() else "saved_model"
    if p.suffix.lower() in KERAS_SUFFIXES and p.exists():
        return "keras3" if keras_major(keras_file_version(p)) >= 3 else "tf_keras"
    return "tf_keras"  # load_keras_model says what is wrong with it


def _callable(source, safe_mode: bool):
    """(the model or Reference kept alive, the call to wrap in tf.function)."""
    if isinstance(source, Reference):
        ref = source
    elif not isinstance(source, (str, Path)):  # a live Keras model
        return source, lambda x: source(x, training=False)
    elif _kind(source) == "tf_keras":
        model = load_keras_model(source, safe_mode=safe_mode)
        return model, lambda x: model(x, training=False)
    else:
        ref = load_reference(source, safe_mode=safe_mode)
    if ref.tf_call is None:
        raise RuntimeFailure(f"{ref.describe()} does not run on TensorFlow; use --runtime "
                             "onnxruntime.")
    return ref, ref.tf_call


@register_runtime
class KerasRuntime(Runtime):
    """Runs a ``.keras`` / ``.h5`` / SavedModel artifact, or a live Keras model,
    under ``tf.function`` (optionally XLA ``jit_compile``)."""

    name = "keras"
    label = "TensorFlow"
    suffixes = (".keras", ".h5", ".hdf5")
    folders = True
    distributions = ("tensorflow",)
    version_key = "tensorflow"
    footprint = 3  # TensorFlow
    bare_call_label = "tf.function call"
    devices = ("cpu", "gpu", "cuda")
    threads_per_process = True  # TensorFlow sizes its thread pools once per process
    OPTIONS = {"jit_compile": Option(False, "XLA-compile the tf.function", bool),
               "unsafe": Option(False, "allow Lambda layers in .keras files (trusted files "
                                       "only)", bool)}

    @classmethod
    def default_threads(cls) -> int:
        """TensorFlow sizes its intra-op pool to the cores the process may use."""
        return cores()

    def __init__(self, artifact, manifest=None, **kw):
        super().__init__(artifact, manifest, **kw)
        self.jit_compile, self.unsafe = self.opts["jit_compile"], self.opts["unsafe"]

    @classmethod
    def check_header(cls, path: Path) -> None:
        """A .keras file is a zip archive; .h5/.hdf5 start with the HDF5 signature."""
        if path.suffix.lower() == ".keras":
            if not zipfile.is_zipfile(path):
                raise RuntimeFailure(f"{path.name} is not a valid .keras archive (not a zip); "
                                     "re-export it.")
            return
        with open(path, "rb") as fh:
            if fh.read(8) != _HDF5:
                raise RuntimeFailure(f"{path.name} is not a valid {path.suffix} file (bad "
                                     "header); re-export it or check the download.")

    def _import(self) -> None:
        tf()
        if _kind(self.artifact) == "keras3":
            keras3()  # its one-time import is not the model's load time

    def _load(self, source) -> None:
        t = tf()
        applied = self._apply_threads(t)
        gpus = t.config.list_physical_devices("GPU")
        on_gpu = self.device in ("gpu", "cuda")
        if on_gpu and not gpus:
            self.refuse_or_fallback("Asked for the Keras runtime on GPU but TensorFlow sees no GPU",
                                    "use --device cpu")
        self._dev = "/GPU:0" if on_gpu and gpus else "/CPU:0"
        if self._dev == "/GPU:0":
            self.device_used = self.device
        with t.device(self._dev):  # variables live where the model is timed
            self._model, call = _callable(source, not self.unsafe)
            self._fn = t.function(call, jit_compile=self.jit_compile, reduce_retracing=True)
        self.providers = ["TensorFlow " + ("GPU" if self._dev == "/GPU:0" else "CPU")
                          + (" XLA" if self.jit_compile else "")]
        self.details = {"tf_device": self._dev, "jit_compile": self.jit_compile,
                        "gpus_visible": len(gpus), "threads_applied": applied}

    def _apply_threads(self, t) -> dict:
        """Set TensorFlow's intra- and inter-op pools to ``threads``; returns what holds.

        TensorFlow fixes its pools when it first runs an op, so a process that already ran
        TensorFlow keeps its first setting (the thread sweep measures each setting in a
        fresh process for that reason); the row then says so instead of claiming ``threads``.
        """
        cfg = t.config.threading
        if self.threads:
            try:
                cfg.set_intra_op_parallelism_threads(self.threads)
                cfg.set_inter_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass  # already initialized: reported below
        got = {"intra_op": cfg.get_intra_op_parallelism_threads() or "default",
               "inter_op": cfg.get_inter_op_parallelism_threads() or "default"}
        if self.threads and got["intra_op"] != self.threads:
            got["note"] = "TensorFlow was already initialized in this process; threads not applied"
        return got

    def _predict(self, x: np.ndarray) -> np.ndarray:
        with tf().device(self._dev):
            return self._fn(x).numpy()

    def _bind(self, x: np.ndarray):
        """The input converted to a tensor on the device once; each call is the
        ``tf.function`` and reading its output."""
        t = tf()
        with t.device(self._dev):
            xt = t.constant(x)
        fn, dev = self._fn, self._dev

        def call():
            with t.device(dev):
                return fn(xt).numpy()
        return call

    def bare_call(self, x: np.ndarray):
        """The ``tf.function`` on a pre-converted tensor: the bound call itself."""
        return self._bind(x)

    def _close(self) -> None:
        self._model = self._fn = None
