"""The runner base class: owns loading, input validation, batching and what-ran reporting.

Each backend overrides ``_load(source)``, ``_predict(x)`` and ``_close()`` (the
Polygraphy runner pattern). A runtime accepts the artifact as a path, bytes, or a
callable returning either (a lazy loader), and is a context manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.preprocess import postprocess, prepare
from export.manifest import Manifest, find_manifest
from bench.verify import verify_artifact
from toolkit.errors import BackendError, EdgekitError, first_line
from toolkit.validation import check_int

_RUNTIMES: dict[str, type["Runtime"]] = {}


def _label(source) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "the model"


def register_runtime(cls):
    """Class decorator registering a runtime under ``cls.name``."""
    _RUNTIMES[cls.name] = cls
    return cls


def runtime_names() -> list[str]:
    return sorted(_RUNTIMES)


def get_runtime_class(name: str) -> type["Runtime"]:
    from toolkit.validation import check_choice

    check_choice("runtime", name, runtime_names(), "bench")
    return _RUNTIMES[name]


class Runtime:
    """Base runner.

    Args:
        artifact: a path, bytes, a loaded object the backend understands, or a callable
            returning one of those.
        manifest: the artifact's manifest; read from ``<artifact>.json`` when omitted.
        threads: CPU threads for the runtime (None: the runtime's default).
        device: ``cpu`` or ``gpu``/``cuda``/``tensorrt`` where the backend supports it.
        allow_fallback: accept a runtime that silently runs elsewhere than asked.
        verify: check a file artifact against its manifest (size, sha256, header) before
            the native loader sees it (``bench.verify``).

    Example:
        >>> with get_runtime_class("onnxruntime")("m.onnx", threads=2) as rt:  # doctest: +SKIP
        ...     probs = rt.predict_images(images)
    """

    name = "base"
    suffixes: tuple[str, ...] = ()

    def __init__(self, artifact, manifest: Manifest | None = None, *, threads: int | None = None,
                 device: str = "cpu", allow_fallback: bool = False, verify: bool = True):
        if threads is not None:
            check_int("threads", threads, self.name, low=1)
        self.artifact = artifact
        self.manifest = manifest
        self.threads = threads
        self.device = device
        self.allow_fallback = allow_fallback
        self.verify = verify
        self.providers: list[str] = []
        self.device_used = device  # backends set what really ran
        self.details: dict = {}  # backend evidence: delegates, node assignment, ...
        self.load_seconds: float | None = None
        self._loaded = False

    # -- lifecycle ---------------------------------------------------------------
    def load(self) -> "Runtime":
        if self._loaded:
            return self
        # A lazy loader is a plain callable; Keras models are callable too but are sources.
        lazy = callable(self.artifact) and not hasattr(self.artifact, "layers")
        source = self.artifact() if lazy else self.artifact
        if self.manifest is None:
            if not isinstance(source, (str, Path)):
                raise BackendError(f"{self.name}: pass a manifest when the artifact is not a file.")
            self.manifest = find_manifest(source)
        if isinstance(source, (str, Path)):
            p = Path(source)
            if not p.exists():
                raise BackendError(f"Artifact not found: {p}")
            if self.suffixes and p.is_file() and p.suffix not in self.suffixes:
                raise BackendError(f"{p.name} is not a {self.name} artifact "
                                   f"(expected {', '.join(self.suffixes)}).")
            if self.verify:
                verify_artifact(p, self.manifest)
        self._import()  # the library import is not the model's init time
        t0 = time.perf_counter()
        try:
            self._load(source)
        except EdgekitError:
            raise
        except Exception as e:  # the native library's own error, as one line
            raise BackendError(f"{self.name} cannot load {_label(source)}: {first_line(e)}") from None
        self.load_seconds = time.perf_counter() - t0
        self._loaded = True
        return self

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
        """Raise BackendError naming expected vs got when ``x`` does not fit the artifact."""
        spec = self.manifest.input
        want = spec.shape
        if x.dtype != np.dtype(spec.dtype):
            raise BackendError(f"{self.name}: input dtype {x.dtype} does not match the artifact's "
                               f"{spec.dtype}; use bench.preprocess.prepare().")
        if x.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want[1:], x.shape[1:])):
            raise BackendError(f"{self.name}: input shape {list(x.shape)} does not match the "
                               f"artifact's {want} (-1 = any batch).")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run one prepared batch (validated) and return the raw output."""
        if not self._loaded:
            self.load()
        x = np.asarray(x)
        self.check_input(x)
        try:
            return self._predict(x)
        except EdgekitError:
            raise
        except Exception as e:
            raise BackendError(f"{self.name} failed to run {_label(self.artifact)}: "
                               f"{first_line(e)}") from None

    def predict_images(self, images: np.ndarray, batch_size: int = 32,
                       progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Class probabilities for uint8 NHWC ``images``, preprocessed from the manifest."""
        if not self._loaded:
            self.load()
        check_int("batch_size", batch_size, "predict", low=1)
        outs = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            n = len(chunk)
            if n < batch_size and len(images) > batch_size:
                # Pad the last batch: static-shape runtimes then never re-allocate.
                pad = np.repeat(chunk[-1:], batch_size - n, axis=0)
                chunk = np.concatenate([chunk, pad])
            x = prepare(chunk, self.manifest)
            outs.append(postprocess(self.predict(x), self.manifest)[:n])
            if progress:
                progress(n)
        return np.concatenate(outs) if outs else np.zeros((0, self.manifest.num_classes), np.float32)

    # -- reporting ---------------------------------------------------------------
    def info(self) -> dict:
        """What actually ran: runtime, device, providers / delegates, threads, and the
        backend's evidence for it (``details``)."""
        return {"runtime": self.name, "device": self.device_used,
                "requested_device": self.device, "fallback": self.device_used != self.device,
                "providers": list(self.providers), "threads": self.threads,
                "runtime_details": dict(self.details)}

    def refuse_or_fallback(self, what: str, hint: str) -> None:
        """Raise BackendError for ``what`` (a device we cannot honour) unless
        ``allow_fallback``; then record that the runtime runs on the CPU instead."""
        if not self.allow_fallback:
            raise BackendError(f"{what}; {hint}, or --allow-fallback to accept the CPU.")
        self.device_used = "cpu"

    def bare_call(self, x: np.ndarray) -> Callable[[], object]:
        """The runtime's own call with ``x`` already bound, for the overhead check
        (``edgekit bench --raw-check``); backends return their native call."""
        return lambda: self._predict(x)

    # -- backend hooks ------------------------------------------------------------
    def _import(self) -> None:
        """Import the backend's library (kept out of ``load_seconds``)."""

    def _load(self, source) -> None:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _close(self) -> None:
        pass
