"""Exporters: pure functions from a Keras model to an ``Artifact`` (bytes + manifest).

Importing ``export`` does not import TensorFlow; the converters do, when called.
"""

from edgeproof.manifest import Manifest, Preprocessing, TensorInfo

__all__ = ["Manifest", "Preprocessing", "TensorInfo"]
