"""The docstring examples run with the tests, each module imported once, by its installed name.

``python -m pytest -q`` runs them (pyproject: testpaths names the package's folders and
addopts has ``--doctest-modules``); the command of the issue, ``--pyargs edgeproof
edgeproof.export edgeproof.bench edgeproof.toolkit``, collects the same examples without
an error. tests/doctest_collection.py is the mechanism.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from tests import doctest_collection as dc

PYARGS = ["--doctest-modules", "--pyargs", "edgeproof", "edgeproof.export", "edgeproof.bench",
          "edgeproof.toolkit"]


def _package_files():
    return sorted(p for folder in dc.PACKAGE_DIRS for p in folder.rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_every_package_file_maps_to_the_module_the_package_imports():
    files = _package_files()
    assert any(p.name == "tflm.py" and p.parent.name == "runtimes" for p in files)
    for path in files:
        name = dc.installed_name(path)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin == str(path), (path, name)
    assert dc.installed_name(dc.ROOT / "tests" / "conftest.py") is None


def test_optional_libraries_are_the_extras_only():
    assert {"torch", "openvino", "nncf", "tflite_micro", "litert_torch"} <= dc.OPTIONAL_IMPORTS
    assert not {"tensorflow", "numpy", "onnx", "onnxruntime"} & dc.OPTIONAL_IMPORTS
    with pytest.raises(pytest.skip.Exception, match="needs openvino"):
        dc._skip_if_optional(ModuleNotFoundError("No module named 'openvino'", name="openvino.runtime"))
    dc._skip_if_optional(ModuleNotFoundError("No module named 'numpy'", name="numpy"))  # no skip


def test_the_default_command_runs_the_doctests():
    ini = dc._PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in ini["addopts"].split()
    folders = {str(p.relative_to(dc.ROOT)) for p in dc.PACKAGE_DIRS}
    assert folders <= set(ini["testpaths"])


def test_the_pyargs_command_collects_every_example_and_imports_each_module_once():
    script = textwrap.dedent(f"""
        import sys, pytest
        rc = pytest.main(["-q", "--co", "-p", "no:cacheprovider", *{PYARGS!r}])
        print("TWICE", sorted(m for m in sys.modules if m.split(".")[0] in
                              ("bench", "export", "toolkit")))
        sys.exit(int(rc))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=dc.ROOT, capture_output=True,
                         text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and " error" not in out.lower(), out[-3000:]  # "1 error"
    assert "TWICE []" in out, out[-3000:]
    with_examples = [p for p in _package_files() if ">>> " in p.read_text(encoding="utf-8")
                     and p.name != "__main__.py"]
    collected = {line.split("::")[0] for line in out.splitlines() if "::" in line}
    missing = [str(p.relative_to(dc.ROOT)) for p in with_examples
               if str(p.relative_to(dc.ROOT)) not in collected]
    assert len(with_examples) > 50 and not missing, missing
