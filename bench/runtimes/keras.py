"""Keras / TensorFlow: the reference. The only backend that imports TensorFlow."""

from __future__ import annotations

import numpy as np

from bench.runtimes.base import Runtime, register_runtime
from toolkit.errors import BackendError


@register_runtime
class KerasRuntime(Runtime):
    """Runs a ``.keras`` / ``.h5`` / SavedModel artifact, or a live Keras model,
    under ``tf.function`` (optionally XLA ``jit_compile``)."""

    name = "keras"
    suffixes = (".keras", ".h5", ".hdf5")

    def __init__(self, artifact, manifest=None, *, jit_compile: bool = False, unsafe: bool = False,
                 **kw):
        super().__init__(artifact, manifest, **kw)
        self.jit_compile = jit_compile
        self.unsafe = unsafe

    def _import(self) -> None:
        from toolkit.tfcompat import tf

        tf()

    def _load(self, source) -> None:
        from toolkit.tfcompat import tf

        t = tf()
        if self.threads:
            try:
                t.config.threading.set_intra_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass  # already initialized: TF keeps its first setting
        gpus = t.config.list_physical_devices("GPU")
        on_gpu = self.device in ("gpu", "cuda")
        if self.device not in ("cpu", "gpu", "cuda"):
            raise BackendError(f"Unknown device '{self.device}' for keras; valid: cpu, gpu, cuda.")
        if on_gpu and not gpus:
            self.refuse_or_fallback("Asked for the Keras runtime on GPU but TensorFlow sees no GPU",
                                    "use --device cpu")
        self._dev = "/GPU:0" if on_gpu and gpus else "/CPU:0"
        if self._dev == "/GPU:0":
            self.device_used = self.device
        if hasattr(source, "predict") and hasattr(source, "layers"):
            model = source
        else:
            from export.keras_export import load_keras_model

            model = load_keras_model(source, safe_mode=not self.unsafe)
        self._model = model
        self._fn = t.function(lambda x: model(x, training=False), jit_compile=self.jit_compile,
                              reduce_retracing=True)
        self.providers = ["TensorFlow " + ("GPU" if self._dev == "/GPU:0" else "CPU")
                          + (" XLA" if self.jit_compile else "")]
        self.details = {"tf_device": self._dev, "jit_compile": self.jit_compile,
                        "gpus_visible": len(gpus)}

    def _predict(self, x: np.ndarray) -> np.ndarray:
        from toolkit.tfcompat import tf

        with tf().device(self._dev):
            return self._fn(x).numpy()

    def bare_call(self, x: np.ndarray):
        """The ``tf.function`` itself on a pre-converted tensor (the raw-check loop)."""
        from toolkit.tfcompat import tf

        t = tf()
        with t.device(self._dev):
            xt = t.constant(x)
        fn, dev = self._fn, self._dev

        def call():
            with t.device(dev):
                return fn(xt).numpy()
        return call

    def _close(self) -> None:
        self._model = self._fn = None
