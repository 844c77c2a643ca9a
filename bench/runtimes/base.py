"""The runtime base class and registry: one class per runtime, one file each.

A runtime class carries everything the rest of edgeproof needs to know about it: its
name, the artifact suffixes it runs, a check of a file's leading bytes, its library
(distribution and import name, for versions), its labels, the devices it can use and
the options it accepts (``OPTIONS``). The suffix → runtime map, ``verify``, the
environment block and the CLI's choices are all read from the registry, so adding a
runtime is one new file plus one import line in ``runtimes/__init__.py``.

Each runtime overrides ``_load(source)``, ``_predict(x)`` and ``_close()`` (the
Polygraphy runner pattern); the base owns input validation, batching, timing hooks and
what-ran reporting. A runtime accepts the artifact as a path, bytes, or a callable
returning either (a lazy loader), and is a context manager.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from edgeproof.bench import isolate
from edgeproof.bench.micro_figures import MicroFigures
from edgeproof.bench.verify import verify_artifact
from edgeproof.errors import EdgeproofError, RuntimeFailure, UsageError, WorkerDied, first_line
from edgeproof.machine import cpu_info, gpu_info
from edgeproof.manifest import Manifest, find_manifest
from edgeproof.preprocess import postprocess, prepare
from edgeproof.options import Option, resolve_options
from edgeproof.registry import Registry
from edgeproof.validation import check_int

RUNTIMES: Registry[type["Runtime"]] = Registry("runtime", "bench")


def source_label(source) -> str:
    """How an error names what a runtime was given: a file's name, or "the model".

    Example:
        >>> source_label("/tmp/m.tflite"), source_label(b"...")
        ('m.tflite', 'the model')
    """
    return Path(source).name if isinstance(source, (str, Path)) else "the model"


def check_tflite_header(path: Path) -> None:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at byte 4 (the runtimes
    that read .tflite files share this check).

    Raises:
        RuntimeFailure: the file does not start like one.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[4:8] != b"TFL3":
        raise RuntimeFailure(f"{path.name} is not a valid .tflite file (bad header); "
                             "re-export it or check the download.")


@functools.lru_cache(maxsize=None)
def hardware(device: str) -> str:
    """The hardware behind an edgeproof device name, in words: this machine's CPU model
    and cores for ``cpu``, the NVIDIA GPU NVML names for ``cuda`` / ``gpu`` /
    ``tensorrt``, else the name itself.

    Example:
        >>> hardware("cpu").endswith("cores)")
        True
    """
    if device == "cpu":
        cpu = cpu_info()
        return f"{cpu['cpu']} ({cpu['cores']} cores)"
    if device in ("cuda", "gpu", "tensorrt"):
        gpu = gpu_info()
        return gpu["name"] if gpu else "an NVIDIA GPU (NVML did not name it)"
    return device


def register_runtime(cls):
    """Class decorator registering a runtime under ``cls.name`` (a duplicate is an error).

    Example:
        >>> @register_runtime  # doctest: +SKIP
        ... class TVMRuntime(Runtime):
        ...     name, suffixes = "tvm", (".so",)
    """
    return RUNTIMES.add(cls.name, cls)


def runtime_names() -> list[str]:
    """Names of the registered runtimes, sorted."""
    return RUNTIMES.names()


def get_runtime_class(name: str) -> type["Runtime"]:
    """The runtime class ``name``; an unknown name lists the valid ones."""
    return RUNTIMES.get(name)


def runtime_for(path) -> str:
    """The runtime that runs ``path`` by default, from the registered suffixes.

    Example:
        >>> runtime_for("model.onnx")
        'onnxruntime'
    """
    p = Path(path)
    for cls in RUNTIMES.rows():
        if (p.is_dir() and cls.folders) or p.suffix.lower() in cls.suffixes:
            return cls.name
    known = sorted({s for cls in RUNTIMES.rows() for s in cls.suffixes})
    raise RuntimeFailure(f"Cannot tell which runtime runs {p.name}; expected {', '.join(known)} "
                         "or a SavedModel folder, or pass --runtime.")


def runtime_options(names) -> dict[str, set[str]]:
    """``{option key: runtimes that accept it}`` over the runtimes ``names``."""
    keys: dict[str, set[str]] = {}
    for name in names:
        for key in get_runtime_class(name).OPTIONS:
            keys.setdefault(key, set()).add(name)
    return keys


def _probe(cls, path: str, manifest: Manifest, options: dict) -> None:
    # Module level: the sandbox process imports it by name.
    h, w = manifest.preprocessing.size
    batch = max(1, manifest.input.shape[0] if manifest.input.shape else 1)  # a fixed batch: its own
    images = np.zeros((batch, h, w, manifest.preprocessing.channels), np.uint8)
    with cls(path, manifest, **options) as rt:
        rt.predict(prepare(images, manifest))


class Runtime:
    """Base runtime.

    Args:
        artifact: a path, bytes, a loaded object the runtime understands, or a callable
            returning one of those.
        manifest: the artifact's manifest; read from ``<artifact>.json`` when omitted.
        threads: CPU threads for the runtime (None: the runtime's default).
        device: one of the class's ``devices``.
        allow_fallback: accept a runtime that runs elsewhere than asked (the row says so).
        verify: check a file artifact against its manifest and header before the native
            loader sees it.
        **options: the class's ``OPTIONS``; an unknown key is an error listing the valid ones.

    Example:
        >>> with get_runtime_class("onnxruntime")("m.onnx", threads=2) as rt:  # doctest: +SKIP
        ...     probs = rt.predict_images(images)
    """

    name = "base"
    label = "base"                 # the library as people name it
    suffixes: tuple[str, ...] = ()  # file suffixes it runs (lower case)
    explicit_suffixes: tuple[str, ...] = ()  # ones it runs only when asked for by name
    folders = False                # runs folder artifacts (SavedModel)
    distributions: tuple[str, ...] = ()  # package names to read its version from
    version_key = ""               # the key of that version in the report's env block
    bare_call_label = "predict"    # what the bare loop calls
    devices: tuple[str, ...] = ("cpu",)
    threads_per_process = False    # True: the thread count holds for the whole process
    footprint = 50                 # what it takes to install: fewer dependencies, lower
    target = "host"                # where its latency means something ("mcu": not here)
    tunable_threads = True         # False: no thread setting, so no sweep
    OPTIONS: dict[str, Option] = {}

    def __init__(self, artifact, manifest: Manifest | None = None, *, threads: int | None = None,
                 device: str = "cpu", allow_fallback: bool = False, verify: bool = True,
                 **options):
        if threads is not None:
            check_int("threads", threads, self.name, low=1)
        self.artifact, self.manifest, self.threads = artifact, manifest, threads
        self.device, self.allow_fallback, self.verify = device, allow_fallback, verify
        self.opts = self.resolve_options(options)
        self.providers: list[str] = []
        self.device_used = device  # runtimes set what really ran
        self.details: dict = {}  # the runtime's evidence: delegates, node assignment, ...
        self.micro: MicroFigures | None = None  # a microcontroller interpreter's memory
        self.load_seconds: float | None = None
        self._loaded = False

    @classmethod
    def resolve_options(cls, given: dict) -> dict:
        """Defaults overlaid with ``given``, each parsed; unknown keys list the valid ones.

        Example:
            >>> get_runtime_class("litert").resolve_options({"xnnpack": "no"})["xnnpack"]
            False
        """
        return resolve_options(given, cls.OPTIONS, cls.name, "Runtime")

    @classmethod
    def default_threads(cls) -> int | None:
        """The thread count the runtime uses when given none (None: not known)."""
        return None

    @classmethod
    def version(cls) -> str | None:
        """The installed version of the runtime's library, without importing it."""
        for dist in cls.distributions:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    @classmethod
    def check_header(cls, path: Path) -> None:
        """Raise RuntimeFailure when ``path`` does not start like a file this runtime runs."""

    # -- lifecycle ---------------------------------------------------------------
    def load(self) -> "Runtime":
        """Resolve the source, verify a file against its manifest, and load it (timed)."""
        if self._loaded:
            return self
        # A lazy loader is a plain callable; Keras models are callable too but are sources.
        lazy = callable(self.artifact) and not hasattr(self.artifact, "layers")
        source = self.artifact() if lazy else self.artifact
        if isinstance(source, (str, Path)):
            self._check_file(Path(source))
        elif self.manifest is None:
            raise RuntimeFailure(f"{self.name}: pass a manifest when the artifact is not a file.")
        if self.device not in self.devices:
            raise UsageError(f"Unknown device '{self.device}' for {self.name}; valid: "
                             f"{', '.join(self.devices)}.")
        self._import()  # the library import is not the model's load time
        t0 = time.perf_counter()
        try:
            self._load(source)
        except EdgeproofError:
            raise
        except Exception as e:  # the native library's own error, as one line
            raise RuntimeFailure(f"{self.name} cannot load {source_label(source)}: "
                                 f"{first_line(e)}") from None
        self.load_seconds = time.perf_counter() - t0
        self._loaded = True
        try:
            self._after_load()
        except EdgeproofError:
            self.close()
            raise
        return self

    def _check_file(self, p: Path) -> None:
        if not p.exists():
            raise RuntimeFailure(f"Artifact not found: {p}")
        if self.manifest is None:
            self.manifest = find_manifest(p)
        runs = self.suffixes + self.explicit_suffixes
        if p.is_file() and runs and p.suffix.lower() not in runs:
            raise RuntimeFailure(f"{p.name} is not a {self.name} artifact "
                                 f"(expected {', '.join(runs)}).")
        if self.verify:
            verify_artifact(p, self.manifest)
            if p.is_file():
                self.check_header(p)
            if not self.manifest.sha256 and not isolate.IN_WORKER:
                self._probe_in_sandbox(p)

    def _probe_in_sandbox(self, p: Path) -> None:
        """A file with no manifest to check it against is loaded and run once in a spawned
        process first: a malformed file that crashes the native loader kills that process,
        not this one."""
        try:
            isolate.run_isolated(_probe, type(self), str(p), self.manifest, self.opts)
        except WorkerDied:
            raise RuntimeFailure(f"{self.name} crashed loading {p.name} in a sandbox "
                                 "process (a malformed file without a manifest); refused.") \
                from None

    def close(self) -> None:
        if self._loaded:
            self._close()
            self._loaded = False

    def __enter__(self):
        return self.load()

    def __exit__(self, *exc):
        self.close()

    # -- inference ---------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> None:
        """Raise RuntimeFailure naming expected vs got when ``x`` does not fit the artifact."""
        spec = self.manifest.input
        want = spec.shape
        if x.dtype != np.dtype(spec.dtype):
            raise RuntimeFailure(f"{self.name}: input dtype {x.dtype} does not match the artifact's "
                                 f"{spec.dtype}; use edgeproof.preprocess.prepare().")
        if x.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want[1:], x.shape[1:])):
            raise RuntimeFailure(f"{self.name}: input shape {list(x.shape)} does not match the "
                                 f"artifact's {want} (-1 = any batch).")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run one prepared batch (validated) and return the raw output."""
        return self.timed_call(np.asarray(x))()

    def timed_call(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        """The call a benchmark times: ``x`` validated and bound once, then each call runs
        the model and reads its output.

        As TFLite's ``benchmark_model`` and ``onnxruntime_perf_test`` do, the input is
        placed once (``_bind``), so the timing holds the inference, not the copy of an
        unchanging input. Errors of the library become one-line RuntimeFailures.

        Example:
            >>> call = rt.timed_call(prepare(images[:1], rt.manifest))  # doctest: +SKIP
            >>> probs = call()  # doctest: +SKIP
        """
        if not self._loaded:
            self.load()
        self.check_input(x)
        run = self._bind(x)

        def call():
            try:
                return run()
            except EdgeproofError:
                raise
            except Exception as e:
                raise RuntimeFailure(f"{self.name} failed to run {source_label(self.artifact)}: "
                                     f"{first_line(e)}") from None

        return call

    def predict_images(self, images: np.ndarray, batch_size: int = 32,
                       progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Class probabilities for uint8 NHWC ``images``, preprocessed from the manifest."""
        if not self._loaded:
            self.load()
        check_int("batch_size", batch_size, "predict", low=1)
        fixed = self.manifest.input.shape[0] if self.manifest.input.shape else -1
        batch_size = fixed if fixed > 0 else batch_size  # a fixed-batch file: its own batch
        outs = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            n = len(chunk)
            if n < batch_size and (len(images) > batch_size or fixed > 0):
                # Pad the last batch: static-shape runtimes then never re-allocate.
                pad = np.repeat(chunk[-1:], batch_size - n, axis=0)
                chunk = np.concatenate([chunk, pad])
            x = prepare(chunk, self.manifest)
            outs.append(postprocess(self.predict(x), self.manifest)[:n])
            if progress:
                progress(n)
        return np.concatenate(outs) if outs else np.zeros((0, self.manifest.num_classes), np.float32)

    # -- reporting ---------------------------------------------------------------
    def ran_on(self) -> str:
        """What ran, in words: the library, the provider or delegate that took the graph,
        and the hardware (``LiteRT (XNNPACK) on AMD EPYC 7B13 (2 cores)``); runtimes that
        run elsewhere (a microcontroller interpreter) say so themselves.

        Example:
            >>> rt.ran_on()  # doctest: +SKIP
            'ONNX Runtime (CPUExecutionProvider) on AMD EPYC 7B13 (2 cores)'
        """
        what = f" ({self.providers[0]})" if self.providers else ""
        return f"{self.label}{what} on {hardware(self.device_used)}"

    def info(self) -> dict:
        """What actually ran: runtime, device, what ran in words (``ran_on``), providers /
        delegates, threads, options, and the runtime's evidence for it (``details``);
        ``micro`` when the runtime measured a microcontroller's memory."""
        info = {"runtime": self.name, "device": self.device_used, "ran_on": self.ran_on(),
                "requested_device": self.device, "fallback": self.device_used != self.device,
                "providers": list(self.providers), "threads": self.threads,
                "runtime_details": {**self.details, "options": dict(self.opts)}}
        if self.micro is not None:
            info["micro"] = self.micro  # frozen: shared, not copied
        return info

    def refuse_or_fallback(self, what: str, hint: str, ran: str = "cpu") -> None:
        """Raise RuntimeFailure for ``what`` (a device we cannot honour) unless
        ``allow_fallback``; then record the device that runs instead (``ran``)."""
        if not self.allow_fallback:
            raise RuntimeFailure(f"{what}; {hint}, or --allow-fallback to accept {ran}.")
        self.device_used = ran

    def bare_call(self, x: np.ndarray) -> Callable[[], object]:
        """The runtime's own call with ``x`` already bound, for the bare-loop check
        (``edgeproof bench --bare-loop``); runtimes return their native call."""
        return lambda: self._predict(x)

    # -- runtime hooks ------------------------------------------------------------
    def _import(self) -> None:
        """Import the runtime's library (kept out of ``load_seconds``)."""

    def _load(self, source) -> None:
        raise NotImplementedError

    def _after_load(self) -> None:
        """Evidence gathering after the timed load (a profiled run, say); default none."""

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        """A zero-argument call running the model on ``x`` bound once (default: predict)."""
        return lambda: self._predict(x)

    def _close(self) -> None:
        pass
