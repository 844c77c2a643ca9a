"""The runtimes, registered by name. Each imports its library when it loads a model, so
importing this package needs neither TensorFlow nor the runtimes' libraries.

Adding a runtime: one file with a ``Runtime`` subclass under ``@register_runtime``, and
its import on the line below.
"""

from edgeproof.bench.runtimes import keras, litert, onnxruntime, tflm  # noqa: F401  (register)
from edgeproof.bench.runtimes import pytorch  # noqa: F401  (register)
from edgeproof.bench.runtimes import openvino  # noqa: F401  (register)
from edgeproof.bench.runtimes import executorch  # noqa: F401  (register)
from edgeproof.bench.runtimes.base import (RUNTIMES, Option, Runtime, get_runtime_class,
                                           register_runtime, runtime_for, runtime_names,
                                           runtime_options)


def open_runtime(artifact, runtime: str | None = None, **kw) -> Runtime:
    """Create (not load) the runtime for ``artifact``; ``runtime`` defaults by suffix.

    Example:
        >>> with open_runtime("m.tflite", threads=2) as rt:  # doctest: +SKIP
        ...     probs = rt.predict_images(images)
    """
    return get_runtime_class(runtime or runtime_for(artifact))(artifact, **kw)


__all__ = ["RUNTIMES", "Option", "Runtime", "get_runtime_class", "open_runtime",
           "register_runtime", "runtime_for", "runtime_names", "runtime_options"]
