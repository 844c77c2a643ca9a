"""OpenVINO: the runtime x86 edge boxes ship with, on its CPU, GPU or NPU plugin.

It runs OpenVINO IR (``.xml`` with its weights in the ``.bin`` beside it) and, when asked
for by name (``--runtime openvino``), ``.onnx`` files, which OpenVINO reads itself (a
QDQ file as an integer model).

Precision, the default and why: OpenVINO's CPU plugin runs float layers in bf16 on CPUs
with bf16 units (AVX512-BF16, AMX) and says so only in the compiled model's properties.
Measured on the AMD EPYC with avx512_bf16 this was written on, a float model compiled
with no hint read back ``INFERENCE_PRECISION_HINT`` = bf16 and its convolutions and
matrix products ran bf16 (asking for f16 also gave bf16); a CIFAR-10 CNN then agreed
with its float self on 99.68% of test images (issue 34). A runtime default that changed
answers with the CPU it lands on would break edgeproof's first rule (nothing that
changes results is tuned silently), so the default here is ``precision=f32``: the hint
is set to f32 and float models run exactly. ``precision=default`` leaves the choice to
OpenVINO, ``bf16`` / ``f16`` ask for one; every row records what really ran, read back
from the compiled model (``details["precision"]``: the execution graph's layer
precisions, the most common first, e.g. ``bf16+f32``; ``inference_precision_hint``;
``layer_precisions``), and the results table shows it in its *precision* column.

Threads: ``INFERENCE_NUM_THREADS`` per compiled model, so the thread sweep re-compiles
in this process. Streams: ``NUM_STREAMS`` (option ``streams``, default 1): edgeproof times
one synchronous request at a time, and more streams split the threads between requests
that never come. ``PERFORMANCE_HINT`` is LATENCY.

Devices: ``cpu``, ``gpu``, ``npu``; one that ``Core.available_devices`` lacks is refused
in one line unless ``allow_fallback`` (then the row says cpu).

Example:
    >>> with OpenVINORuntime("m-openvino-fp32.xml", threads=2) as rt:  # doctest: +SKIP
    ...     rt.info()["runtime_details"]["precision"]
    'f32'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.bench.openvino_graph import (available_devices, clean_message, core, hint_name,
                                            layer_precisions, openvino_module, precision_label,
                                            weights_file)
from edgeproof.bench.runtimes.base import Option, Runtime, register_runtime
from edgeproof.bench.threads import cores
from edgeproof.errors import ModelError, RuntimeFailure
from edgeproof.manifest import sha256_file
from edgeproof.quiet import quiet_native
from edgeproof.reference_onnx import check_external_data

PRECISIONS = ("f32", "bf16", "f16", "default")
PLUGINS = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}


@register_runtime
class OpenVINORuntime(Runtime):
    """Runs OpenVINO IR (``.xml`` + ``.bin``) and, by name, ``.onnx`` artifacts.

    Options (``OPTIONS``): ``precision`` (f32 | bf16 | f16 | default: the inference
    precision asked of the plugin; f32 keeps float exact), ``streams`` (NUM_STREAMS).

    Example:
        >>> with OpenVINORuntime("m.onnx", precision="default") as rt:  # doctest: +SKIP
        ...     rt.info()["runtime_details"]["inference_precision_hint"]
        'bf16'
    """

    name = "openvino"
    label = "OpenVINO"
    suffixes = (".xml",)
    explicit_suffixes = (".onnx",)
    distributions = ("openvino",)
    version_key = "openvino"
    footprint = 3  # openvino, numpy, openvino-telemetry
    bare_call_label = "infer_request.infer()"
    devices = tuple(PLUGINS)
    OPTIONS = {"precision": Option("f32", "inference precision asked of the plugin (f32: float "
                                          "exact; default: OpenVINO's, bf16 on CPUs with bf16 "
                                          "units)", str, PRECISIONS),
               "streams": Option(1, "NUM_STREAMS (one synchronous request is timed: 1)", int)}

    @classmethod
    def default_threads(cls) -> int:
        """OpenVINO's latency mode uses one thread per physical core."""
        import psutil

        return psutil.cpu_count(logical=False) or cores()

    @classmethod
    def check_header(cls, path: Path) -> None:
        """An IR is XML with a ``<net`` element, its ``.bin`` beside it; an ONNX file's
        external weights must be there.

        Example:
            >>> OpenVINORuntime.check_header(Path(__file__))
            Traceback (most recent call last):
            ...
            edgeproof.errors.RuntimeFailure: openvino.py is not a valid OpenVINO IR .xml (bad header); re-export it.
        """
        if path.suffix.lower() == ".onnx":
            try:
                check_external_data(path)
            except ModelError as e:
                raise RuntimeFailure(str(e)) from None
            except Exception:
                pass  # an unparsable file: OpenVINO says so in its own line
            return
        with open(path, "rb") as fh:
            head = fh.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith((b"<?xml", b"<net")) or b"<net" not in head:
            raise RuntimeFailure(f"{path.name} is not a valid OpenVINO IR .xml (bad header); "
                                 "re-export it.")
        weights_file(path)

    def _check_file(self, p: Path) -> None:
        """The base checks (manifest, sha256 of the .xml, header), then the ``.bin``
        against the manifest's record of it: an IR is two files and both must match."""
        super()._check_file(p)
        if not self.verify or p.suffix.lower() != ".xml":
            return
        want = ((self.manifest.conversion or {}).get("companion_files") or {}).get(".bin")
        weights = weights_file(p)
        if want and weights is not None and sha256_file(weights) != want.get("sha256"):
            raise RuntimeFailure(f"{weights.name} does not match its manifest's sha256 (changed "
                                 f"since export, or from another export than {p.name}); "
                                 "re-export it.")

    def _import(self) -> None:
        openvino_module()

    def _plugin(self) -> str:
        """The plugin to compile for: the device asked, or CPU after a permitted fallback."""
        if self.device == "cpu":
            return "CPU"
        here = available_devices()
        if self.device in here:
            return PLUGINS[self.device]
        self.refuse_or_fallback(f"Asked for OpenVINO's {PLUGINS[self.device]} but its devices "
                                f"here are {', '.join(d.upper() for d in here) or 'none'}",
                                "use --device cpu")
        return "CPU"

    def _config(self, plugin: str) -> dict:
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": str(self.opts["streams"])}
        if self.opts["precision"] != "default":
            config["INFERENCE_PRECISION_HINT"] = self.opts["precision"]
        if self.threads and plugin == "CPU":
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return config

    def _read(self, source):
        ov = openvino_module()
        if isinstance(source, ov.Model):
            return source
        if isinstance(source, (bytes, bytearray)):  # ONNX bytes (an IR needs its .bin too)
            return core().read_model(bytes(source))
        return core().read_model(str(Path(source)))

    def _load(self, source) -> None:
        plugin = self._plugin()
        try:
            with quiet_native():  # a file it cannot read is tried by every frontend, loudly
                model = self._read(source)
                self._compiled = core().compile_model(model, plugin, self._config(plugin))
        except RuntimeFailure:
            raise
        except Exception as e:
            raise RuntimeFailure(f"OpenVINO cannot load the model on {plugin}: "
                                 f"{clean_message(e)}") from None
        if plugin != "CPU":
            self.device_used = self.device
        self._request = self._compiled.create_infer_request()
        self.providers = [str(d) for d in self._compiled.get_property("EXECUTION_DEVICES")]
        self._record_precision()

    def _property(self, key: str):
        try:
            return self._compiled.get_property(key)
        except Exception:  # a plugin without this property
            return None

    def _record_precision(self) -> None:
        """What the compiled model says it runs: the hint it settled on and each
        computing layer's precision (the proof of a silent bf16)."""
        hint = self._property("INFERENCE_PRECISION_HINT")
        hint = hint_name(hint) if hint is not None else None
        layers = layer_precisions(self._compiled)
        asked = self.opts["precision"]
        self.details = {"precision": precision_label(layers, hint),
                        "precision_requested": asked, "inference_precision_hint": hint,
                        "layer_precisions": layers,
                        "streams": self._property("NUM_STREAMS"),
                        "inference_num_threads": self._property("INFERENCE_NUM_THREADS")
                        or "default", "performance_hint": str(self._property("PERFORMANCE_HINT")),
                        "available_devices": available_devices()}
        if asked != "default" and hint is not None and hint != asked:
            self.details["precision_note"] = (f"asked for {asked}, the {self.providers[0]} "
                                              f"plugin runs {hint} here")

    def _bind(self, x: np.ndarray):
        """The input tensor set once (sharing ``x``'s memory); each call is one
        synchronous ``infer()`` and a copy of the output (the request reuses its buffer)."""
        ov = openvino_module()
        x = np.ascontiguousarray(x)
        request = self._request
        request.set_input_tensor(ov.Tensor(x, shared_memory=True))

        def call():
            request.infer()
            return request.get_output_tensor(0).data.copy()

        call.keep = x  # the tensor shares this array's memory: it must outlive the call
        return call

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._bind(x)()

    def bare_call(self, x: np.ndarray):
        """``infer_request.infer()`` with the input tensor set once (the bare loop)."""
        ov = openvino_module()
        x = np.ascontiguousarray(x)
        request = self._request
        request.set_input_tensor(ov.Tensor(x, shared_memory=True))
        return lambda: (x, request.infer())

    def _close(self) -> None:
        self._request = self._compiled = None
