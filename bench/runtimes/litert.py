"""LiteRT (``ai-edge-litert``): the maintained TFLite interpreter, XNNPACK by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.runtimes.base import Runtime, register_runtime
from toolkit.errors import BackendError


@register_runtime
class LiteRTRuntime(Runtime):
    """Runs ``.tflite`` artifacts; ``xnnpack=False`` uses the builtin kernels only."""

    name = "litert"
    suffixes = (".tflite",)

    def __init__(self, artifact, manifest=None, *, xnnpack: bool = True, **kw):
        super().__init__(artifact, manifest, **kw)
        self.xnnpack = xnnpack
        self._batch = None

    def _load(self, source) -> None:
        if self.device != "cpu":
            raise BackendError(f"litert runs on cpu here; got device '{self.device}'. GPU/NPU "
                               "delegates are for phones: use --device cpu.")
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if self.xnnpack else \
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        kw = {"model_content": bytes(source)} if isinstance(source, (bytes, bytearray)) \
            else {"model_path": str(Path(source))}
        from toolkit.quiet import quiet_native

        try:
            with quiet_native():  # "Created TensorFlow Lite XNNPACK delegate" on fd 2
                self._interp = Interpreter(num_threads=self.threads,
                                           experimental_op_resolver_type=resolver, **kw)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"LiteRT cannot load the model: {str(e).splitlines()[0][:200]}") from None
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = int(self._interp.get_input_details()[0]["shape"][0])
        self.providers = ["XNNPACK", "CPU"] if self.xnnpack else ["CPU"]

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self._interp.get_input_details()[0]["shape"])
            shape[0] = batch
            self._interp.resize_tensor_input(self._in, shape)
            self._interp.allocate_tensors()
            self._batch = batch

    def _predict(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out).copy()

    def invoke_only(self):
        """The bare ``invoke()`` for overhead checks (input already set)."""
        return self._interp.invoke

    def _close(self) -> None:
        self._interp = None
