"""ONNX Runtime with the CPU, CUDA or TensorRT execution provider.

Proof of what ran: ``session.get_providers()`` after the session is built (ONNX Runtime
drops a provider it cannot create, e.g. CUDA without its libraries, and says so only in
a log line), and with ``profile=True`` the provider each node was assigned to, read
from one profiled run (``SessionOptions.enable_profiling``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgeproof.bench.runtimes.base import Option, Runtime, register_runtime
from edgeproof.bench.threads import cores
from edgeproof.errors import ModelError, RuntimeFailure, first_line
from edgeproof.reference_onnx import check_external_data

PROVIDERS = {"cpu": ["CPUExecutionProvider"],
             "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
             "gpu": ["CUDAExecutionProvider", "CPUExecutionProvider"],
             "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}
LEVELS = ("disable", "basic", "extended", "all")
# The first byte of a serialized ModelProto is the tag of one of its fields
# (ir_version, producer_*, domain, model_version, doc_string, graph, opset_import,
# metadata_props, training_info, functions).
_FIRST_TAGS = frozenset((0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA))


@register_runtime
class OnnxRuntime(Runtime):
    """Runs ``.onnx`` artifacts. Asking for CUDA/TensorRT and getting CPU is an error
    unless ``allow_fallback``; ``providers`` lists what the session really uses.

    Options (``OPTIONS``): ``graph_optimization`` (disable | basic | extended | all),
    ``inter_threads`` (inter-op threads; ``threads`` sets intra-op threads), ``profile``
    (record which provider each node ran on, from one extra profiled run).

    Example:
        >>> with OnnxRuntime("m.onnx", threads=2, profile=True) as rt:  # doctest: +SKIP
        ...     rt.info()["runtime_details"]["node_providers"]
        {'CPUExecutionProvider': 9}
    """

    name = "onnxruntime"
    label = "ONNX Runtime"
    suffixes = (".onnx",)
    distributions = ("onnxruntime-gpu", "onnxruntime")
    version_key = "onnxruntime"
    footprint = 2  # onnxruntime, numpy, protobuf, flatbuffers, ...
    bare_call_label = "session.run()"
    devices = tuple(PROVIDERS)
    # Speed-only knobs (outputs unchanged); defaults are the measured-fastest settings,
    # docs/BENCHMARKS.md "Speed-only knobs".
    OPTIONS = {"graph_optimization": Option("all", "graph optimization level", str, LEVELS),
               "execution_mode": Option("sequential", "run independent nodes in parallel "
                                        "(parallel) or one at a time", str,
                                        ("sequential", "parallel")),
               "inter_threads": Option(None, "inter-op threads (default: ONNX Runtime's)", int),
               "profile": Option(False, "record the provider of every node (one profiled run)",
                                 bool)}

    @classmethod
    def default_threads(cls) -> int:
        """ONNX Runtime's intra-op pool defaults to one thread per physical core."""
        import psutil

        return psutil.cpu_count(logical=False) or cores()

    def __init__(self, artifact, manifest=None, **kw):
        super().__init__(artifact, manifest, **kw)
        self.graph_optimization = self.opts["graph_optimization"]
        self.inter_threads, self.profile = self.opts["inter_threads"], self.opts["profile"]

    @classmethod
    def check_header(cls, path: Path) -> None:
        """An ONNX file is a ModelProto: its first byte is the tag of one of its fields."""
        with open(path, "rb") as fh:
            head = fh.read(1)
        if not head or head[0] not in _FIRST_TAGS:
            raise RuntimeFailure(f"{path.name} is not a valid ONNX protobuf (bad header); "
                                 "re-export it.")
        try:  # weights in model.onnx.data beside it: a missing one is named, not a crash
            check_external_data(path)
        except ModelError as e:
            raise RuntimeFailure(str(e)) from None
        except Exception:
            pass  # an unparsable file: the loader says so in its own line

    def _options(self, ort, profile_prefix: str | None = None):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if self.inter_threads:
            opts.inter_op_num_threads = self.inter_threads
        opts.execution_mode = getattr(ort.ExecutionMode, f"ORT_{self.opts['execution_mode'].upper()}")
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, {
            "disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
            "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[self.graph_optimization])
        for key, value in self._artifact_session_options().items():
            opts.add_session_config_entry(key, str(value))
        if profile_prefix:
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
        return opts

    def _artifact_session_options(self) -> dict:
        """Session options the artifact needs to compute what it was exported to (its
        manifest's ``conversion.session_options``; e.g. an onnx-int8 file that keeps some
        nodes float disables the transformer that would quantize them at load)."""
        return dict((self.manifest.conversion or {}).get("session_options") or {}) \
            if self.manifest is not None else {}

    def _session(self, ort, model, providers, profile_prefix=None):
        try:
            return ort.InferenceSession(model, self._options(ort, profile_prefix), providers=providers)
        except Exception as e:
            raise RuntimeFailure(f"ONNX Runtime cannot load the model: "
                               f"{first_line(e, 200)}") from None

    def _import(self) -> None:
        import onnxruntime  # noqa: F401

    def _load(self, source) -> None:
        import onnxruntime as ort

        if not os.environ.get("EDGEPROOF_VERBOSE"):
            ort.set_default_logger_severity(3)  # a missing CUDA is our one-line error instead
        wanted = PROVIDERS[self.device]
        preloaded = self._preload_gpu_libraries(ort) if wanted[0] != "CPUExecutionProvider" else None
        usable = [p for p in wanted if p in ort.get_available_providers()] or wanted[-1:]
        model = bytes(source) if isinstance(source, (bytes, bytearray)) else str(Path(source))
        # Profiling is switched on in the one session (ended after its first run), never by
        # building a second session: a TensorRT engine would be built twice.
        self._profile_dir = tempfile.TemporaryDirectory() if self.profile else None
        prefix = os.path.join(self._profile_dir.name, "ort") if self._profile_dir else None
        self._sess = self._session(ort, model, usable, prefix)
        self.providers = self._sess.get_providers()
        self._in = self._sess.get_inputs()[0].name
        self.details = {"available_providers": ort.get_available_providers(),
                        "graph_optimization": self.graph_optimization,
                        "intra_op_threads": self.threads or "default",
                        "inter_op_threads": self.inter_threads or "default"}
        if self._artifact_session_options():
            self.details["session_options"] = self._artifact_session_options()
        if preloaded is not None:
            self.details["preload_dlls"] = preloaded

    def _after_load(self) -> None:
        """Outside the load timing: the profiled run, then what device really ran."""
        if self._profile_dir is not None:
            with self._profile_dir:
                self.details["node_providers"] = self._node_providers()
            self._profile_dir = None
        wanted = PROVIDERS[self.device][0]
        if wanted == "CPUExecutionProvider":
            return
        if wanted in self.providers and not self._nodes_fell_back(wanted):
            self.device_used = self.device
            return
        # A TensorRT request that got CUDA ran on CUDA: the row says cuda, with its fallback.
        ran = "cuda" if "CUDAExecutionProvider" in self.providers and \
            not self._nodes_fell_back("CUDAExecutionProvider") else "cpu"
        self.refuse_or_fallback(f"Asked for {wanted} but ONNX Runtime runs "
                                f"{self.details.get('node_providers') or self.providers}",
                                "use --device cpu", ran=ran)

    @staticmethod
    def _preload_gpu_libraries(ort) -> str:
        """Load the CUDA/cuDNN libraries of the ``[cuda]`` extra's nvidia wheels before a
        GPU session is built (``onnxruntime.preload_dlls``, ONNX Runtime >= 1.21); a box
        with a system-wide CUDA needs nothing. Returns what happened, for the row."""
        if not hasattr(ort, "preload_dlls"):
            return "not available in this onnxruntime"
        try:
            ort.preload_dlls()
            return "ok"
        except Exception as e:  # missing wheels: the session below says what really runs
            return f"failed: {first_line(e, 120)}"

    def _nodes_fell_back(self, want: str) -> bool:
        counts = self.details.get("node_providers")
        return bool(counts) and want != "CPUExecutionProvider" and not counts.get(want)

    def _node_providers(self) -> dict:
        """One run of the profiled session, then profiling ends; nodes per provider."""
        spec = self._sess.get_inputs()[0]
        shape = [1 if not isinstance(d, int) else d for d in spec.shape]
        self._sess.run(None, {self._in: np.zeros(shape, _np_type(spec.type))})
        with open(self._sess.end_profiling()) as fh:
            events = json.load(fh)
        return dict(Counter(e["args"]["provider"] for e in events
                            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
                            and "provider" in e.get("args", {})))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run(None, {self._in: x})[0]

    def _bind(self, x: np.ndarray):
        """The feed dict built once; each call is ``session.run``."""
        run, feed = self._sess.run, {self._in: x}
        return lambda: run(None, feed)[0]

    def bare_call(self, x: np.ndarray):
        """``session.run`` with the feed dict built once (the bare loop)."""
        run, feed = self._sess.run, {self._in: x}
        return lambda: run(None, feed)

    def _close(self) -> None:
        self._sess = None


def _np_type(onnx_type: str):
    return {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
            "tensor(int8)": np.int8}.get(onnx_type, np.float32)
