"""Training precision and ``tf.distribute``: chosen by flags and the detected hardware.

Precision (``--precision``) is a Keras dtype policy: ``float32``, ``mixed_float16``
(tensor cores: GPUs of compute capability 7.0 or more), ``mixed_bfloat16`` (CPUs with
AMX or AVX512-BF16, and TPUs) or ``auto``, which picks among them and says why
(``mixed`` is an alias of auto). Registry heads are built with ``dtype="float32"``, so
softmax and loss stay float32. A model trained in mixed precision is saved and exported
as a float32 copy with the same weights (``float32_copy``): converters then see plain
float32 graphs.

Strategies (``--strategy``): ``mirrored`` (all local GPUs, or the logical CPUs) and
``multiworker`` (``MultiWorkerMirroredStrategy`` reading ``TF_CONFIG`` as TensorFlow's
documentation describes; it must exist before anything else touches TensorFlow).

Example:
    >>> policy, why = resolve_precision("auto")  # doctest: +SKIP
    >>> policy, why  # doctest: +SKIP
    ('mixed_bfloat16', 'the CPU has AMX-BF16: bfloat16 matrix units')
"""

from __future__ import annotations

import contextlib
import json
import os

from edgeproof.machine import cpu_flags
from edgeproof.tfcompat import keras, tf
from edgeproof.validation import check_choice

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
ALIASES = {"mixed": "auto"}
STRATEGIES = ("default", "mirrored", "multiworker")
_BF16_FLAGS = (("amx_bf16", "AMX-BF16: bfloat16 matrix units"),
               ("avx512_bf16", "AVX512-BF16: bfloat16 dot products"))


def _gpu_compute_capability() -> tuple[str, tuple[int, int]] | None:
    t = tf()
    for gpu in t.config.list_physical_devices("GPU"):
        details = t.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        if cc:
            return details.get("device_name", gpu.name), tuple(cc)
    return None


def resolve_precision(requested: str, flags: set[str] | None = None,
                      gpu=None) -> tuple[str, str]:
    """The Keras policy for ``requested`` and why it was picked.

    Args:
        requested: one of ``PRECISIONS`` (or ``mixed``, an alias of ``auto``).
        flags, gpu: the CPU flags and ``(name, compute capability)`` of the first GPU
            (default: detected here; passed in by tests).

    Example:
        >>> resolve_precision("auto", flags={"avx2"}, gpu=("T4", (7, 5)))
        ('mixed_float16', 'GPU T4 has compute capability 7.5 (tensor cores)')
    """
    requested = ALIASES.get(requested, requested)
    check_choice("precision", requested, PRECISIONS, "train")
    if requested != "auto":
        return requested, "asked for"
    gpu = _gpu_compute_capability() if gpu is None else gpu
    if gpu and gpu[1] >= (7, 0):
        return "mixed_float16", (f"GPU {gpu[0]} has compute capability "
                                 f"{gpu[1][0]}.{gpu[1][1]} (tensor cores)")
    flags = cpu_flags() if flags is None else flags
    for flag, what in _BF16_FLAGS:
        if flag in flags:
            return "mixed_bfloat16", f"the CPU has {what}"
    return "float32", "no GPU of compute capability 7.0 or more, no bfloat16 CPU units"


@contextlib.contextmanager
def precision_policy(policy: str = "float32"):
    """Set the Keras global dtype policy for the block (a resolved policy name)."""
    check_choice("precision", policy, PRECISIONS[:3], "train")
    mp = keras().mixed_precision
    before = mp.global_policy().name
    mp.set_global_policy(policy)
    try:
        yield
    finally:
        mp.set_global_policy(before)


def float32_copy(model, always: bool = False):
    """``model`` as float32 (same weights), for saving and export; itself when it is,
    unless ``always`` (a copy built outside any distribution strategy: a model made under
    ``MultiWorkerMirroredStrategy`` saves through collectives, which need every worker).

    Example:
        >>> float32_copy(model).layers[1].dtype_policy.name  # doctest: +SKIP
        'float32'
    """
    k = keras()

    def mixed(m) -> bool:
        return any(getattr(layer, "dtype_policy", None) is not None and
                   layer.dtype_policy.name != "float32" or
                   (isinstance(layer, k.Model) and mixed(layer)) for layer in m.layers)

    if not always and not mixed(model):
        return model

    def clone(layer):
        if isinstance(layer, k.Model):
            return float32_copy(layer)
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    with precision_policy("float32"):
        copy = k.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def cluster() -> dict:
    """This process's place in ``TF_CONFIG``: workers, task type and index, chief or not.

    Example:
        >>> os.environ.pop("TF_CONFIG", None) and None
        >>> cluster()
        {'workers': 1, 'task': 'worker', 'index': 0, 'chief': True}
    """
    cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
    spec, task = cfg.get("cluster", {}), cfg.get("task", {})
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in spec)
    return {"workers": max(workers, 1), "task": kind, "index": index, "chief": chief}


def make_strategy(name: str | None):
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``default`` / None (the current one), ``mirrored`` (all local GPUs, or all
            logical CPUs when there is no GPU), ``multiworker`` (reads ``TF_CONFIG``; a
            single worker without it). ``EDGEPROOF_COLLECTIVE_TIMEOUT`` (seconds) bounds
            how long a worker waits for a peer that died, so it fails instead of hanging.

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
    timeout = os.environ.get("EDGEPROOF_COLLECTIVE_TIMEOUT")
    options = t.distribute.experimental.CommunicationOptions(
        timeout_seconds=float(timeout) if timeout else None)
    return t.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def strategy_summary(strategy, name: str) -> dict:
    """train.json's ``strategy``: ``{"name", "workers", "replicas"}``."""
    workers = cluster()["workers"] if name == "multiworker" else 1
    return {"name": name, "workers": workers, "replicas": int(strategy.num_replicas_in_sync)}
