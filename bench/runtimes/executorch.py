"""ExecuTorch: the runtime PyTorch users ship on phones and boards, through its Python API
(``executorch.runtime``: ``Runtime.get().load_program(path).load_method("forward")
.execute([tensor])``), XNNPACK for the partitions lowered to it.

Proof of what ran: the program's own execution plan (``bench.pte_graph.pte_facts``): the
delegate calls (``XnnpackBackend``: one per partition) and the operators left to
ExecuTorch's portable kernels, by name and count; the share of the graph's operators
inside XNNPACK comes from the manifest (measured on the lowered program at export). A
``.pte`` needing an operator this runtime has no kernel for is refused before the load
with one line naming it (the load itself would only say "error 0x14").

Input: the tensor is laid out in the dim order the program's input says (a ``.pte``
lowered from a channels_last example expects channels_last memory; fed contiguous
memory it answers wrongly without an error); edgeproof's own files are contiguous. A
dynamic batch is planned for ``max_batch`` images: more in one call is one line.

Threads: ExecuTorch's XNNPACK runs on one process-wide thread pool, resized by the
bindings' ``_unsafe_reset_threadpool``; so each setting is measured in a fresh worker
process (``threads_per_process``). The bindings need torch (they take torch tensors): the
second runtime here that imports it, on behalf of ExecuTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.bench.pte_graph import executorch_lib, missing_line, pte_facts
from edgeproof.bench.runtimes.base import Runtime, register_runtime, source_label
from edgeproof.bench.threads import cores
from edgeproof.errors import RuntimeFailure
from edgeproof.quiet import quiet_native

@register_runtime
class ExecuTorchRuntime(Runtime):
    """Runs ``.pte`` artifacts on the ExecuTorch runtime (XNNPACK + portable kernels).

    Example:
        >>> with ExecuTorchRuntime("net-executorch-fp32.pte", threads=2) as rt:  # doctest: +SKIP
        ...     rt.info()["runtime_details"]["delegated_share"]
        0.9286
    """

    name = "executorch"
    label = "ExecuTorch"
    suffixes = (".pte",)
    distributions = ("executorch",)
    version_key = "executorch"
    footprint = 4  # executorch and torch (hundreds of MB)
    bare_call_label = "method.execute()"
    threads_per_process = True

    @classmethod
    def default_threads(cls) -> int:
        """ExecuTorch's thread pool has one thread per core the process may use."""
        return cores()

    @classmethod
    def check_header(cls, path: Path) -> None:
        """A ``.pte`` is a flatbuffer with the identifier ``ET..`` at byte 4.

        Example:
            >>> ExecuTorchRuntime.check_header(Path(__file__))
            Traceback (most recent call last):
            ...
            edgeproof.errors.RuntimeFailure: executorch.py is not a valid ExecuTorch program (bad header); re-export it.
        """
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head[4:6] != b"ET":
            raise RuntimeFailure(f"{path.name} is not a valid ExecuTorch program (bad header); "
                                 "re-export it.")

    def _import(self) -> None:
        executorch_lib()

    def _load(self, source) -> None:
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source)
        elif not isinstance(source, (str, Path)):
            raise RuntimeFailure("executorch: give the .pte file's path or bytes.")
        facts = pte_facts(source)
        lib = executorch_lib()
        backends = set(facts.delegates) - set(lib._get_registered_backend_names())
        if facts.missing_ops or backends:  # the load would only say "error 0x14"
            raise RuntimeFailure(missing_line(source_label(source), facts.missing_ops,
                                              sorted(backends)))
        from executorch.runtime import Runtime as ETRuntime

        with quiet_native():  # cpuinfo and the thread pool log on fd 2
            if self.threads and hasattr(lib, "_unsafe_reset_threadpool"):
                lib._unsafe_reset_threadpool(self.threads)
            program = ETRuntime.get().load_program(
                source if isinstance(source, bytes) else str(source))
            self._method = program.load_method(facts.method)
        self._facts = facts
        self._record(facts, lib)

    def _record(self, facts, lib) -> None:
        delegation = facts.delegation or ((self.manifest.conversion or {}).get("executorch")
                                          or {}).get("delegation") or {}
        partitions = sum(facts.delegates.values())
        self.providers = (["XNNPACK"] if partitions else []) + \
            (["portable kernels"] if facts.kernel_ops or not partitions else [])
        self.details = {
            "delegates": facts.delegates, "delegate_nodes": partitions,
            "kernel_ops": facts.kernel_ops, "dim_order": facts.dim_order,
            "max_batch": facts.max_batch,
            "threads": lib._threadpool_get_thread_count()
            if hasattr(lib, "_threadpool_get_thread_count") else "default"}
        # The share of operators inside XNNPACK is measured on the lowered graph at
        # export; the program itself keeps only its calls, so a file without a manifest
        # says so rather than a share made up from them.
        self.details["delegated_share"] = delegation.get("share")
        self.details["not_delegated"] = delegation.get("not_delegated", {})
        if not delegation:
            self.details["delegation_note"] = ("no export record: the share of operators "
                                               "inside XNNPACK is measured at export")

    def _tensor(self, x: np.ndarray):
        import torch

        if self.manifest.input.shape[:1] == [-1] and len(x) > self._facts.max_batch:
            raise RuntimeFailure(
                f"executorch: {source_label(self.artifact)} is planned for batches of up to "
                f"{self._facts.max_batch} images, not {len(x)}; export it with --option "
                f"max_batch={len(x)}.")
        t = torch.from_numpy(np.ascontiguousarray(x))
        order = self._facts.input_dim_order
        if order and order != sorted(order):  # the memory layout the program expects
            t = t.permute(*order).contiguous().permute(*np.argsort(order).tolist())
        return t

    def _bind(self, x: np.ndarray):
        """The input tensor made once; each call executes the method and reads its output."""
        execute, inputs = self._method.execute, [self._tensor(x)]
        return lambda: execute(inputs)[0].numpy()

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._bind(x)()

    def bare_call(self, x: np.ndarray):
        """``method.execute`` with the input tensor made once (the bare loop)."""
        execute, inputs = self._method.execute, [self._tensor(x)]
        return lambda: execute(inputs)

    def _close(self) -> None:
        self._method = None
