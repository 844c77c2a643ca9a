"""TensorFlow Lite Micro on this host: which ops it has, and the smallest arena that works.

TFLM (the ``tflite-micro`` package, an extra: ``pip install -e ".[micro]"``) allocates
everything in one arena when the interpreter is built. Its recording allocator reports
what it used (``print_allocations``, on C stderr), but that total is not always the
smallest arena that works: it leaves out the planner's temporary memory, which for tiny
models is more than the head (the minimum can be ~300 B higher), and the tail's alignment
to the arena's end can make it ~8 B lower. So ``measure`` records the allocator's total,
then finds the true minimum by construction: exactly that arena works, one byte less
fails cleanly, and outputs at the minimum equal those of a large arena.

Below about 464 bytes TFLM dereferences a null pointer and the process dies, and an
unknown file may crash it anyway, so all of this runs in a spawned sandbox process
(``bench.isolate``); no probe goes below ``MIN_PROBE_ARENA``. Op support is asked of the
interpreter itself, one op at a time (a two-op model ``[op, unknown custom op]`` fails at
op lookup, before any kernel code runs, naming the first op that has no kernel), so every
missing op is named, not only the first.

Example:
    >>> m = measure(open("m-int8.tflite", "rb").read())  # doctest: +SKIP
    >>> m.arena_bytes, m.arena_recorded_bytes, m.ops  # doctest: +SKIP
    (20016, 20016, {'CONV_2D': True, 'MAX_POOL_2D': True, 'SOFTMAX': True})
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import threading

import numpy as np

from edgeproof.bench.isolate import run_isolated
from edgeproof.bench.micro import analyze, read_graph, schema
from edgeproof.bench.micro_figures import GraphFigures, MicroFigures
from edgeproof.errors import RuntimeFailure, WorkerDied

INSTALL = 'pip install -e ".[micro]"'
MIN_PROBE_ARENA = 512  # below ~464 B TFLM segfaults instead of failing
LARGE_ARENAS = (1 << 20, 16 << 20, 256 << 20)  # untouched pages cost nothing
KERNELS = "TFLM reference kernels on the host CPU"
HOST_LATENCY = ("host CPU running TFLM's reference kernels: not microcontroller time "
                "(microcontrollers are ranked by MACs)")
_FD2 = threading.Lock()  # fd 2 is process-wide: one capture at a time
_SENTINEL = "zz_edgeproof_sentinel"
_ALLOC = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_MISSING = re.compile(r"Didn't find op for (?:builtin|custom) opcode '([^']+)'")
_NODE = re.compile(r"Node (\S+) \(number (\d+)\) failed to prepare")
_CACHE: dict[str, MicroFigures] = {}


def version() -> str | None:
    """The installed tflite-micro version, or None (read from package metadata).

    Example:
        >>> version()  # doctest: +SKIP
        '0.dev20261023182759'
    """
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return None


def require():
    """The ``tflite_micro.runtime`` module, or a one-line error saying how to install it.

    Example:
        >>> runtime = require()  # doctest: +SKIP
        >>> interp = runtime.Interpreter.from_bytes(data, arena_size=64 * 1024)  # doctest: +SKIP
    """
    try:
        from tflite_micro import runtime
    except ImportError:
        raise RuntimeFailure(f"The tflm runtime needs tflite-micro, which is not installed: "
                             f"{INSTALL} (wheels for x86-64 Linux).") from None
    return runtime


@contextlib.contextmanager
def capture_fd2():
    """Capture what native code writes to fd 2 (TFLM's MicroPrintf) into ``box["text"]``.

    Example:
        >>> with capture_fd2() as log:  # doctest: +SKIP
        ...     interp.print_allocations()
        >>> "Arena allocation total" in log["text"]  # doctest: +SKIP
        True
    """
    with _FD2:
        sys.stderr.flush()
        saved = os.dup(2)
        box: dict = {}
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield box
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                box["text"] = tmp.read().decode(errors="replace")


def construct(data: bytes, arena: int):
    """``(interpreter or None, TFLM's log, one-line reason or None)`` for ``arena`` bytes.

    Example:
        >>> interp, log, why = construct(data, 64 * 1024)  # doctest: +SKIP
        >>> why  # doctest: +SKIP
        "TFLM has no kernel for GELU"
    """
    if arena < MIN_PROBE_ARENA:
        raise ValueError(f"arena {arena} < {MIN_PROBE_ARENA} bytes can crash TFLM")
    runtime = require()
    with capture_fd2() as log:
        try:
            interp, err = runtime.Interpreter.from_bytes(bytes(data), arena_size=int(arena)), None
        except (RuntimeError, ValueError) as e:
            interp, err = None, e
    text = log["text"]
    return interp, text, None if err is None else reason(text, err)


def reason(log: str, err: BaseException | None = None) -> str:
    """One line from TFLM's log: the missing ops, else what failed and in which node.

    Example:
        >>> reason("Didn't find op for builtin opcode 'GELU'\\nFailed to get registration")
        'TFLM has no kernel for GELU'
        >>> reason("conv.cc Hybrid models are not supported on TFLite Micro.\\n"
        ...        "Node CONV_2D (number 4) failed to prepare with status 1")
        'Hybrid models are not supported on TFLite Micro. (node 4, CONV_2D)'
    """
    missing = _MISSING.findall(log)
    if missing:
        return f"TFLM has no kernel for {', '.join(dict.fromkeys(missing))}"
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    node = next((_NODE.search(ln) for ln in lines if _NODE.search(ln)), None)
    why = next((ln for ln in lines if not _NODE.search(ln)), None) or str(err or "unknown error")
    why = re.sub(r"^\S+\.(cc|h)(:\d+)? ", "", why)
    return (f"{why} (node {node.group(2)}, {node.group(1)})" if node else why)[:200]


def allocations(interp) -> dict[str, int]:
    """The recording allocator's ``{total, head, tail}`` bytes.

    Example:
        >>> allocations(construct(data, 1 << 20)[0])  # doctest: +SKIP
        {'total': 20016, 'head': 16384, 'tail': 3632}
    """
    with capture_fd2() as log:
        interp.print_allocations()
    return {k: int(v) for k, v in _ALLOC.findall(log["text"])}


def _sentinel_model(fb, code: int) -> bytes:
    """A two-op model ``[builtin code, unknown custom op]`` with no tensors."""
    import flatbuffers

    def opcode(builtin, custom=None):
        oc = fb.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
        oc.customCode = custom
        return oc

    def node(i):
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = i, [], []
        return op

    m, sg = fb.ModelT(), fb.SubGraphT()
    m.version, m.description = 3, "edgeproof op probe"
    m.operatorCodes = [opcode(code), opcode(fb.BuiltinOperator.CUSTOM, _SENTINEL)]
    sg.tensors, sg.inputs, sg.outputs, sg.operators = [], [], [], [node(0), node(1)]
    m.subgraphs, m.buffers = [sg], [fb.BufferT()]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def op_support(names) -> dict[str, bool]:
    """``{op: whether TFLM has a kernel}`` for builtin op names, asked of the interpreter.

    Custom ops (``CUSTOM:name``) are judged by building the real model.

    Example:
        >>> op_support(["CONV_2D", "GELU"])  # doctest: +SKIP
        {'CONV_2D': True, 'GELU': False}
    """
    fb = schema()
    codes = {k: v for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    out = {}
    for name in dict.fromkeys(names):
        if name not in codes:
            continue
        _, log, _ = construct(_sentinel_model(fb, codes[name]), 4096)
        out[name] = not any(m == name for m in _MISSING.findall(log))
    return out


def _probe_input(interp) -> np.ndarray:
    d = interp.get_input_details(0)  # each call leaks a little in the wrapper: once
    return np.random.default_rng(0).integers(-100, 100, d["shape"]).astype(d["dtype"])


def _output(interp, x) -> np.ndarray:
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def _first_working(data: bytes):
    """(interpreter, arena, None) at the first large arena that builds, else (None, 0, why)."""
    why = None
    for arena in LARGE_ARENAS:
        interp, log, why = construct(data, arena)
        if interp is not None:
            return interp, arena, None
        if no_arena_helps(f"{log}\n{why}"):  # TFLM's own words, in its log or error
            break
    return None, 0, why


def no_arena_helps(log: str) -> bool:
    """Whether TFLM's log says the model cannot run at any arena size (missing kernels, or
    a model kind TFLM does not support), so a larger arena is not worth trying.

    Example:
        >>> no_arena_helps("Didn't find op for builtin opcode 'GELU'")
        True
        >>> no_arena_helps("Failed to resize buffer. Requested: 9000, available 2000")
        False
    """
    return bool(_MISSING.search(log)) or "not supported" in log


def smallest_arena(data: bytes, recorded: int) -> tuple[int, int]:
    """(the smallest arena that builds, probes used), starting from the recorded total.

    The answer ``n`` is bracketed by construction: ``n`` builds and ``n - 1`` does not
    (or ``n`` is ``MIN_PROBE_ARENA``, below which nothing is tried).

    Example:
        >>> smallest_arena(data, 1568)  # doctest: +SKIP
        (1848, 11)
    """
    probes = 0

    def works(n: int) -> bool:
        nonlocal probes
        probes += 1
        return construct(data, n)[0] is not None

    hi = max(recorded, MIN_PROBE_ARENA)
    if works(hi):
        lo = hi - 1
        if lo < MIN_PROBE_ARENA:
            return hi, probes
        while works(lo):  # the recorded total is more than needed: halve until one fails
            hi = lo
            if lo == MIN_PROBE_ARENA:
                return lo, probes
            lo = max(MIN_PROBE_ARENA, lo // 2)
    else:  # the planner's temporary memory did not fit: grow until it builds
        lo, step = hi, max(16, hi // 16)
        hi = lo + step
        while not works(hi):
            lo, step = hi, step * 2
            hi = lo + step
            if hi > LARGE_ARENAS[-1]:
                raise RuntimeFailure(f"TFLM did not build with {lo} bytes of arena.")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi, probes


def measure_here(data: bytes) -> dict:
    """Op support, the recorded arena and the smallest arena that works (run in a sandbox:
    ``measure``). A file TFLM cannot run returns ``{"ok": False, "error", "ops"}``.

    Example:
        >>> run_isolated(measure_here, data)["arena_bytes"]  # doctest: +SKIP
        20016
    """
    graph = read_graph(data)
    support = op_support([op.name for op in graph.ops])
    missing = [op for op, ok in support.items() if not ok]
    if missing:
        return {"ok": False, "ops": support,
                "error": f"TFLM has no kernel for {', '.join(missing)}"}
    interp, arena, why = _first_working(data)
    if interp is None:
        return {"ok": False, "ops": support, "error": why}
    support.update({op.name: True for op in graph.ops})  # custom ops it found too
    used = allocations(interp)
    x = _probe_input(interp)
    want = _output(interp, x)
    del interp
    best, probes = smallest_arena(data, used["total"])
    at_min, _, _ = construct(data, best)
    same = at_min is not None and np.array_equal(_output(at_min, x), want)
    return {"ok": True, "ops": support, "arena_bytes": best,
            "arena_recorded_bytes": used["total"], "arena_head_bytes": used["head"],
            "arena_tail_bytes": used["tail"],
            "arena_search": {"probes": probes, "one_byte_less_fails": best > MIN_PROBE_ARENA,
                             "outputs_match_large_arena": bool(same)}}


def measure(data: bytes, graph: GraphFigures | None = None) -> MicroFigures:
    """TFLM's figures for a ``.tflite`` file's bytes, measured in a sandbox process
    (``graph``: the file's ``analyze`` result when the caller has it already).

    A file TFLM cannot run gets its computed arena (``arena_kind`` "computed") and
    ``tflm_error`` naming why (the missing ops, marked False in ``ops``). Results are cached
    per file content.

    Raises:
        RuntimeFailure: tflite-micro is not installed, or TFLM crashed on the file.

    Example:
        >>> measure(open("gelu-int8.tflite", "rb").read()).tflm_error  # doctest: +SKIP
        'TFLM has no kernel for GELU'
    """
    require()
    key = hashlib.sha256(data).hexdigest()
    if key not in _CACHE:
        try:
            got = run_isolated(measure_here, bytes(data))
        except WorkerDied:
            raise RuntimeFailure("TFLM crashed building this model in a sandbox process (a "
                                 "malformed or unsupported file).") from None
        graph = graph or analyze(data)
        _CACHE[key] = (MicroFigures.measured_on_tflm(graph, got, KERNELS, version()) if got["ok"]
                       else MicroFigures.computed(graph, got["error"], got["ops"]))
    return _CACHE[key]
