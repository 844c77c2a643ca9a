"""Run one benchmark in a fresh process, as benchmark_model and onnxruntime_perf_test do.

Runtimes share a process badly: after TensorFlow has run a model its thread pools keep
competing for the cores, and LiteRT measured later in the same process was up to 2.7x
slower (InceptionV3-150 dynamic-range, 12.1 ms vs 4.5 ms; docs/BENCHMARKS.md). A
spawned worker per artifact sees only its own runtime, and a native crash in it becomes
a failed row instead of ending the whole benchmark.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from edgeproof.errors import WorkerDied

IN_WORKER = False  # True inside a process run_isolated spawned


def _mark_worker() -> None:
    global IN_WORKER
    IN_WORKER = True


def run_isolated(fn, /, *args, **kwargs):
    """Return ``fn(*args, **kwargs)`` computed in a fresh spawned process.

    ``fn`` must be importable (a module-level function) and its arguments picklable.

    Raises:
        WorkerDied: the worker died (e.g. a segfault in a native runtime); an error raised
            inside ``fn`` is raised here as itself.

    Example:
        >>> run_isolated(sum, [1, 2, 3])
        6
    """
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_mark_worker) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            raise WorkerDied("The benchmark worker process died (a crash in the runtime's "
                                 "native code); the artifact or runtime is broken.") from None
