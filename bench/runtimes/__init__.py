"""Runtime backends, registered by name. Backends import their library on load only."""

from bench.runtimes import keras, litert, onnxruntime  # noqa: F401  (register)
from bench.runtimes.base import Runtime, get_runtime_class, register_runtime, runtime_names

DEFAULT_RUNTIME = {".tflite": "litert", ".onnx": "onnxruntime", ".keras": "keras", ".h5": "keras",
                   ".hdf5": "keras"}


def runtime_for(path) -> str:
    """The default runtime name for an artifact path (SavedModel folders: keras)."""
    from pathlib import Path

    from toolkit.errors import BackendError

    p = Path(path)
    if p.is_dir():
        return "keras"
    if p.suffix in DEFAULT_RUNTIME:
        return DEFAULT_RUNTIME[p.suffix]
    raise BackendError(f"Cannot tell which runtime runs {p.name}; expected .tflite, .onnx, "
                       ".keras, .h5 or a SavedModel folder, or pass --runtime.")


def open_runtime(artifact, runtime: str | None = None, **kw) -> Runtime:
    """Create (not load) the runtime for ``artifact``; ``runtime`` defaults by suffix."""
    return get_runtime_class(runtime or runtime_for(artifact))(artifact, **kw)


__all__ = ["Runtime", "get_runtime_class", "register_runtime", "runtime_names", "runtime_for",
           "open_runtime"]
