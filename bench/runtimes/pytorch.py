"""PyTorch (eager, CPU): the framework a PyTorch user trained in, as a bench row.

It runs ``torch.export`` programs (``.pt2``) and TorchScript files, loaded by the core
loader (``edgeproof.reference_torch``: no pickles, ``weights_only`` where a file is read
at all), under ``torch.inference_mode``. It is what every export of a PyTorch model is
compared with, and its latency is the baseline their speed-up is measured against. The
only runtime that imports torch.

Threads: ``torch.set_num_threads`` sizes PyTorch's intra-op pool for the whole process,
so the thread sweep measures each setting in a fresh worker process (``threads_per_process``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeproof.bench.runtimes.base import Runtime, register_runtime
from edgeproof.bench.threads import cores
from edgeproof.errors import RuntimeFailure
from edgeproof.reference_torch import TORCH_SUFFIXES, load_torch_reference, torch_module


@register_runtime
class PyTorchRuntime(Runtime):
    """Runs a ``.pt2`` or TorchScript artifact in eager PyTorch on the CPU.

    Example:
        >>> with PyTorchRuntime("net.pt2", threads=2) as rt:  # doctest: +SKIP
        ...     probs = rt.predict_images(images)
    """

    name = "pytorch"
    label = "PyTorch"
    suffixes = TORCH_SUFFIXES
    distributions = ("torch",)
    version_key = "torch"
    footprint = 4  # torch (hundreds of MB)
    bare_call_label = "module(x) under inference_mode"
    threads_per_process = True

    @classmethod
    def default_threads(cls) -> int:
        """PyTorch sizes its intra-op pool to the cores the process may use."""
        return cores()

    @classmethod
    def check_header(cls, path: Path) -> None:
        """``.pt2`` and TorchScript files are zip archives.

        Example:
            >>> PyTorchRuntime.check_header(Path(__file__))
            Traceback (most recent call last):
            ...
            edgeproof.errors.RuntimeFailure: pytorch.py is not a valid PyTorch archive (not a zip); save it again with torch.export.save or torch.jit.save.
        """
        if not zipfile.is_zipfile(path):
            raise RuntimeFailure(f"{path.name} is not a valid PyTorch archive (not a zip); save "
                                 "it again with torch.export.save or torch.jit.save.")

    def _import(self) -> None:
        torch_module()

    def _load(self, source) -> None:
        if not isinstance(source, (str, Path)):
            raise RuntimeFailure("pytorch: give the .pt2 or TorchScript file's path.")
        torch = torch_module()
        if self.threads:
            torch.set_num_threads(self.threads)
        ref = load_torch_reference(Path(source))
        self._module = ref.extras["module"]
        self.providers = ["PyTorch CPU (eager)"]
        self.details = {"kind": ref.kind, "dim_order": ref.extras["dim_order"],
                        "intra_op_threads": torch.get_num_threads(),
                        "fixed_batch": ref.extras["batch"]}

    def _bind(self, x: np.ndarray):
        """The input as a tensor once; each call runs the module and reads its output."""
        torch = torch_module()
        t, module = torch.from_numpy(np.ascontiguousarray(x)), self._module

        def call():
            with torch.inference_mode():
                return module(t).float().numpy()
        return call

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._bind(x)()

    def _close(self) -> None:
        self._module = None
