"""GPU paths of training: mixed precision and ``tf.distribute`` strategies.

Both are chosen by flags (``--precision``, ``--strategy``) and must be set up before
the model is built: the dtype policy decides the layers' compute dtype, and variables
must be created inside the strategy's scope.

Example:
    >>> with precision_policy("mixed"), strategy_scope("mirrored") as strategy:  # doctest: +SKIP
    ...     model = create_model("flowers_cnn", 5, (150, 150, 3))
"""

from __future__ import annotations

import contextlib

from edgeproof.tfcompat import keras, tf
from edgeproof.validation import check_choice

PRECISIONS = ("float32", "mixed")
STRATEGIES = ("default", "mirrored", "multiworker")


@contextlib.contextmanager
def precision_policy(precision: str = "float32"):
    """Set the Keras global dtype policy for the block (``mixed`` = mixed_float16).

    Registry heads are built with ``dtype="float32"`` so softmax and loss stay float32;
    Keras wraps the optimizer in a LossScaleOptimizer on compile.
    """
    check_choice("precision", precision, PRECISIONS, "train")
    mp = keras().mixed_precision
    before = mp.global_policy().name
    mp.set_global_policy("mixed_float16" if precision == "mixed" else "float32")
    try:
        yield
    finally:
        mp.set_global_policy(before)


def make_strategy(name: str | None):
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``default`` / None (the current one), ``mirrored`` (all local GPUs, or all
            logical CPUs when there is no GPU), ``multiworker`` (reads ``TF_CONFIG``; a
            single worker without it).

    Example:
        >>> make_strategy("mirrored").num_replicas_in_sync  # doctest: +SKIP
        2
    """
    t = tf()
    name = name or "default"
    check_choice("strategy", name, STRATEGIES, "train")
    if name == "default":
        return t.distribute.get_strategy()
    if name == "mirrored":
        gpus = t.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in t.config.list_logical_devices("CPU")]
        return t.distribute.MirroredStrategy(devices=devices)
    return t.distribute.MultiWorkerMirroredStrategy()


@contextlib.contextmanager
def strategy_scope(name: str | None):
    """Enter ``make_strategy(name).scope()``; yields the strategy."""
    strategy = make_strategy(name)
    with strategy.scope():
        yield strategy
