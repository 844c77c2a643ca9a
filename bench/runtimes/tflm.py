"""TensorFlow Lite Micro (``tflite-micro``, the ``[micro]`` extra): a ``.tflite`` file on
the interpreter microcontrollers run, with its reference kernels, on this host.

What a microcontroller person needs is memory, and that is what this runtime measures
(``bench.tflm_arena``, in a sandbox process: a file TFLM cannot build, or that crashes it, is a
failed row naming why, never a dead benchmark): the smallest tensor arena that works, the
recording allocator's head and tail, the flash the file takes, its ops and whether TFLM
has a kernel for each, and its multiply-accumulates. The interpreter then runs with
exactly that smallest arena, so the row's accuracy and parity were computed in it.

Host latency here is TFLM's reference kernels on this CPU: not microcontroller time, and
labelled so (``runtime_details``); the recommendation never ranks it against other
runtimes, and ``--target mcu`` ranks by MACs instead. It is never picked by suffix: ask
for it with ``--runtime tflm`` (or ``--target mcu``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.bench import tflm_arena
from edgeproof.bench.runtimes.base import (Runtime, check_tflite_header, hardware,
                                           register_runtime, source_label)
from edgeproof.errors import RuntimeFailure


@register_runtime
class TFLMRuntime(Runtime):
    """Runs full-integer (and float) ``.tflite`` files on TFLM's reference kernels.

    Example:
        >>> with TFLMRuntime("m-int8.tflite") as rt:  # doctest: +SKIP
        ...     rt.micro.arena_bytes, rt.micro.ops
        (20016, {'CONV_2D': True, 'FULLY_CONNECTED': True, 'SOFTMAX': True})
    """

    name = "tflm"
    label = "TensorFlow Lite Micro"
    explicit_suffixes = (".tflite",)  # never the default for .tflite: LiteRT is
    distributions = ("tflite-micro",)
    version_key = "tflite_micro"
    footprint = 2  # tflite-micro, numpy, flatbuffers, pyyaml
    bare_call_label = "interpreter.invoke()"
    target = "mcu"
    tunable_threads = False  # single-threaded reference kernels

    @classmethod
    def default_threads(cls) -> int:
        """TFLM has no threads: one."""
        return 1

    @classmethod
    def check_header(cls, path: Path) -> None:
        """A TFLite flatbuffer carries the file identifier ``TFL3`` at byte 4."""
        check_tflite_header(path)

    def _import(self) -> None:
        tflm_arena.require()

    def _load(self, source) -> None:
        data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) \
            else Path(source).read_bytes()
        figures = tflm_arena.measure(data)  # in a sandbox process: a crash stops only it
        if not figures.measured:
            raise RuntimeFailure(f"tflm cannot run {source_label(source)}: {figures.tflm_error}.")
        arena = figures.arena_bytes
        interp, _, why = tflm_arena.construct(data, arena)
        if interp is None:  # it built at this size in the sandbox; say so if not here
            raise RuntimeFailure(f"tflm: {source_label(source)} did not build with the "
                                 f"{arena}-byte arena found in the sandbox: {why}.")
        self._interp = interp
        self._in_spec = interp.get_input_details(0)  # each call leaks in the wrapper: once
        self._batch = int(self._in_spec["shape"][0])
        self.micro = figures
        self.providers = ["TFLM"]
        self.details = {"kernels": tflm_arena.KERNELS, "latency": tflm_arena.HOST_LATENCY,
                        "arena_size": arena, "tflite_micro": figures.tflite_micro,
                        "load": "includes the smallest-arena search, in a sandbox process"}

    def ran_on(self) -> str:
        """The interpreter microcontrollers run, here on the host CPU (not a board)."""
        return (f"TFLM interpreter (reference kernels) on the host CPU, "
                f"{hardware('cpu')}: not a microcontroller")

    def _chunks(self, x: np.ndarray):
        if len(x) % self._batch:
            raise RuntimeFailure(f"tflm: the model takes batches of {self._batch}; got "
                                 f"{len(x)} (TFLM cannot resize inputs).")
        return [x[i:i + self._batch] for i in range(0, len(x), self._batch)]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        interp, outs = self._interp, []
        for chunk in self._chunks(np.ascontiguousarray(x)):
            interp.set_input(chunk, 0)
            interp.invoke()
            outs.append(interp.get_output(0))
        return np.concatenate(outs)

    def _bind(self, x: np.ndarray):
        """Input set once when it is one model batch; each call invokes and reads."""
        chunks = self._chunks(np.ascontiguousarray(x))
        if len(chunks) > 1:
            return lambda: self._predict(x)
        self._interp.set_input(chunks[0], 0)
        invoke, get = self._interp.invoke, self._interp.get_output
        return lambda: (invoke(), get(0))[1]

    def bare_call(self, x: np.ndarray):
        """``interpreter.invoke`` itself, with one batch of ``x`` set once."""
        self._interp.set_input(self._chunks(np.ascontiguousarray(x))[0], 0)
        return self._interp.invoke

    def _close(self) -> None:
        self._interp = None
