"""LiteRT (``ai-edge-litert``): the maintained TFLite interpreter, XNNPACK by default.

Proof of what ran: when LiteRT applies its default XNNPACK delegate (on the first
``allocate_tensors()``), it appends one ``DELEGATE`` node per delegated partition to the
interpreter's node list; the builtin-only resolver appends none. ``details`` records
the op count before delegation and the delegate nodes after, so a row that says
``XNNPACK`` is one where the delegate really took the graph.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edgeproof.bench.runtimes.base import (Option, Runtime, check_tflite_header,
                                           register_runtime)
from edgeproof.errors import RuntimeFailure, first_line
from edgeproof.quiet import quiet_native


def builtin_ops(nodes: list[dict], graph_outputs) -> Counter:
    """Ops that run on builtin kernels in a delegated graph, by name and count.

    The interpreter lists every original op plus one ``DELEGATE`` node per partition, and
    Python cannot read the execution plan; dataflow tells them apart. An op whose output a
    DELEGATE node produces is inside a partition. An op that is not, and whose output feeds
    a DELEGATE node, a graph output or another builtin op, runs on a builtin kernel.

    Example:
        >>> nodes = [{"index": 0, "op_name": "CONV_2D", "inputs": [0], "outputs": [1]},
        ...          {"index": 1, "op_name": "SOFTMAX", "inputs": [1], "outputs": [2]},
        ...          {"index": 2, "op_name": "DELEGATE", "inputs": [0], "outputs": [1]}]
        >>> dict(builtin_ops(nodes, [2]))
        {'SOFTMAX': 1}
    """
    delegate = [n for n in nodes if n["op_name"] == "DELEGATE"]
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    made_by_delegate = {t for n in delegate for t in n["outputs"]}
    needed = {t for n in delegate for t in n["inputs"]} | set(graph_outputs)
    consumers: dict[int, list[int]] = {}
    for n in ops:
        for t in n["inputs"]:
            consumers.setdefault(t, []).append(n["index"])
    free = [n for n in ops if not set(n["outputs"]) & made_by_delegate]
    builtin = {n["index"] for n in free if set(n["outputs"]) & needed}
    grew = True
    while grew:  # producers of what builtin ops read run outside the delegate too
        grew = False
        for n in free:
            if n["index"] not in builtin and any(c in builtin for t in n["outputs"]
                                                 for c in consumers.get(t, ())):
                builtin.add(n["index"])
                grew = True
    return Counter(n["op_name"] for n in ops if n["index"] in builtin)


@register_runtime
class LiteRTRuntime(Runtime):
    """Runs ``.tflite`` artifacts; ``xnnpack=False`` uses the builtin kernels only.

    Example:
        >>> with LiteRTRuntime("m.tflite", threads=2) as rt:  # doctest: +SKIP
        ...     rt.info()["runtime_details"]["delegate_nodes"]
        1
    """

    name = "litert"
    label = "LiteRT"
    suffixes = (".tflite",)
    distributions = ("ai-edge-litert",)
    version_key = "ai_edge_litert"
    footprint = 1  # ai-edge-litert and numpy
    bare_call_label = "interpreter.invoke()"
    devices = ("cpu", "gpu", "cuda", "tensorrt")  # accepted so that a GPU request is refused
    # Speed-only knobs (outputs unchanged); defaults are the measured-fastest settings,
    # docs/BENCHMARKS.md "Speed-only knobs".
    OPTIONS = {"xnnpack": Option(True, "apply the XNNPACK delegate (false: builtin kernels "
                                       "only)", bool),
               "delegate_clustering": Option(True, "let the delegate cluster ops into fewer "
                                                   "partitions", bool),
               "latest_features": Option(False, "XNNPACK's newest operator support", bool)}

    @classmethod
    def default_threads(cls) -> int:
        """LiteRT's interpreter and its XNNPACK delegate run one thread unless told."""
        return 1

    def __init__(self, artifact, manifest=None, **kw):
        super().__init__(artifact, manifest, **kw)
        self.xnnpack = self.opts["xnnpack"]
        self._batch = None

    @classmethod
    def check_header(cls, path: Path) -> None:
        """A TFLite flatbuffer carries the file identifier ``TFL3`` at byte 4."""
        check_tflite_header(path)

    def _import(self) -> None:
        import ai_edge_litert.interpreter  # noqa: F401

    def _load(self, source) -> None:
        if self.device != "cpu":
            self.refuse_or_fallback(f"litert runs on the CPU here, not '{self.device}' (GPU/NPU "
                                    "delegates are for phones)", "use --device cpu")
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if self.xnnpack else \
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        kw = {"model_content": bytes(source)} if isinstance(source, (bytes, bytearray)) \
            else {"model_path": str(Path(source))}
        try:
            with quiet_native():  # "Created TensorFlow Lite XNNPACK delegate" on fd 2
                self._interp = Interpreter(
                    num_threads=self.threads, experimental_op_resolver_type=resolver,
                    experimental_disable_delegate_clustering=not self.opts["delegate_clustering"],
                    experimental_default_delegate_latest_features=self.opts["latest_features"],
                    **kw)
                ops = self._interp._interpreter.NumNodes()
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise RuntimeFailure(f"LiteRT cannot load the model: {first_line(e, 200)}") from None
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = int(self._interp.get_input_details()[0]["shape"][0])
        self._record_delegation(ops)

    def _record_delegation(self, ops: int) -> None:
        """Count the DELEGATE nodes the interpreter appended (the XNNPACK proof), and name
        the ops left on builtin kernels between and around them."""
        nodes = self._interp._get_ops_details()
        delegates = sum(n["op_name"] == "DELEGATE" for n in nodes)
        builtin = builtin_ops(nodes, self._interp._interpreter.OutputIndices()) if delegates \
            else Counter(n["op_name"] for n in nodes)
        self.details = {"ops": ops, "delegate_nodes": delegates, "xnnpack_requested": self.xnnpack,
                        "builtin_ops": dict(sorted(builtin.items())),
                        "num_threads": self.threads if self.threads else "default"}
        self.providers = ["XNNPACK", "CPU"] if delegates else ["CPU"]
        if self.xnnpack and not delegates:
            self.details["note"] = "XNNPACK requested but no op was delegated"

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self._interp.get_input_details()[0]["shape"])
            shape[0] = batch
            self._interp.resize_tensor_input(self._in, shape)
            self._interp.allocate_tensors()
            self._batch = batch

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            self._resize(len(x))
        interp = self._interp
        interp.set_tensor(self._in, x)
        interp.invoke()
        return interp.get_tensor(self._out)  # get_tensor already returns a copy

    def _bind(self, x: np.ndarray):
        """Input set once; each call is ``invoke()`` and reading the output."""
        self._resize(len(x))
        self._interp.set_tensor(self._in, x)
        invoke, get, out = self._interp.invoke, self._interp.get_tensor, self._out
        return lambda: (invoke(), get(out))[1]

    def bare_call(self, x: np.ndarray):
        """``interpreter.invoke`` itself, with ``x`` set once (the raw-check loop)."""
        self._resize(len(x))
        self._interp.set_tensor(self._in, x)
        return self._interp.invoke

    def _close(self) -> None:
        self._interp = None
