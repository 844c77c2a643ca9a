"""The one place TensorFlow is imported.

tensorflow-model-optimization needs Keras 2, so edgeproof runs TensorFlow with the
``tf-keras`` package (``TF_USE_LEGACY_KERAS=1``). The variable must be set before
TensorFlow is first imported, which is why every module goes through ``tf()`` and
``keras()`` instead of importing TensorFlow at module level.
"""

from __future__ import annotations

import os
import random
import sys

from edgeproof.quiet import quiet_native


def _configure_env() -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tf():
    """Import and return the ``tensorflow`` module, configured for Keras 2."""
    _configure_env()
    if "tensorflow" not in sys.modules:
        with quiet_native():  # absl/cuda-stub chatter on import and device discovery
            import tensorflow

            tensorflow.config.list_physical_devices()
    import tensorflow

    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


def keras():
    """Return the Keras 2 (``tf_keras``) module that edgeproof builds models with."""
    tf()
    import tf_keras

    return tf_keras


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; on request make TF ops deterministic.

    Determinism costs some speed on GPU; on CPU it makes two runs with the same seed
    produce identical weights.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    t = tf()
    t.keras.utils.set_random_seed(seed)
    if deterministic:
        try:
            t.config.experimental.enable_op_determinism()
        except Exception:  # older TF: determinism unavailable, seeds still set
            pass
