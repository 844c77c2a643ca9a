"""ONNX Runtime with the CPU, CUDA or TensorRT execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.runtimes.base import Runtime, register_runtime
from toolkit.errors import BackendError

PROVIDERS = {"cpu": ["CPUExecutionProvider"],
             "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
             "gpu": ["CUDAExecutionProvider", "CPUExecutionProvider"],
             "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}


@register_runtime
class OnnxRuntime(Runtime):
    """Runs ``.onnx`` artifacts. Asking for CUDA/TensorRT and getting CPU is an error
    unless ``allow_fallback``; ``providers`` lists what the session really uses."""

    name = "onnxruntime"
    suffixes = (".onnx",)

    def __init__(self, artifact, manifest=None, *, graph_optimization: str = "all",
                 inter_threads: int | None = None, **kw):
        super().__init__(artifact, manifest, **kw)
        self.graph_optimization = graph_optimization
        self.inter_threads = inter_threads

    def _load(self, source) -> None:
        import onnxruntime as ort

        if self.device not in PROVIDERS:
            raise BackendError(f"Unknown device '{self.device}' for onnxruntime; valid: "
                               f"{', '.join(PROVIDERS)}.")
        wanted = PROVIDERS[self.device]
        available = ort.get_available_providers()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if self.inter_threads:
            opts.inter_op_num_threads = self.inter_threads
        levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        opts.graph_optimization_level = levels[self.graph_optimization]
        model = bytes(source) if isinstance(source, (bytes, bytearray)) else str(Path(source))
        try:
            self._sess = ort.InferenceSession(model, opts,
                                              providers=[p for p in wanted if p in available] or wanted[-1:])
        except Exception as e:
            raise BackendError(f"ONNX Runtime cannot load the model: "
                               f"{str(e).strip().splitlines()[0][:200]}") from None
        self.providers = self._sess.get_providers()
        if wanted[0] not in self.providers and not self.allow_fallback:
            raise BackendError(f"Asked for {wanted[0]} but ONNX Runtime runs {self.providers} "
                               "(no usable GPU here?). Use --device cpu, or --allow-fallback to "
                               "accept CPU.")
        self._in = self._sess.get_inputs()[0].name

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run(None, {self._in: x})[0]

    def _close(self) -> None:
        self._sess = None
