"""Doctest collection for the installed package (loaded by the repository's conftest.py).

The repository keeps toolkit/, export/ and bench/ at its top level and installs them as
edgeproof.toolkit, .export and .bench (pyproject's ``[tool.setuptools.package-dir]``).
pytest's doctest collector would import ``bench/runtimes/tflm.py`` by its folder name,
``bench.runtimes.tflm``: a second copy of a module the package already imported as
``edgeproof.bench.runtimes.tflm``, whose registrations then fail ("registered twice").
Here every doctest module is imported by the name package-dir gives it; files outside the
package (tests, scripts) give no doctests.

A module or example that needs a library of an optional extra (``[torch]``,
``[openvino]``, ``[micro]``) which is not installed is skipped with its name, not failed:
the package installs and is tested without those extras.
"""


from __future__ import annotations

import doctest
import importlib
import os
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_dirs() -> dict[Path, str]:
    """``{folder: installed package}``, longest folder first (package-dir of pyproject)."""
    dirs = _PYPROJECT["tool"]["setuptools"]["package-dir"]
    pairs = {(ROOT / folder).resolve(): package for package, folder in dirs.items()}
    return dict(sorted(pairs.items(), key=lambda kv: -len(kv[0].parts)))


def _optional_imports() -> frozenset[str]:
    """Import names of the libraries that only an optional extra installs."""
    project = _PYPROJECT["project"]
    core = {Requirement(r).name.lower() for r in project["dependencies"]}
    extra = {Requirement(r).name.lower() for reqs in project["optional-dependencies"].values()
             for r in reqs}
    return frozenset(name.replace("-", "_") for name in extra - core - {project["name"]})


PACKAGE_DIRS = _package_dirs()
OPTIONAL_IMPORTS = _optional_imports()


def installed_name(path: Path) -> str | None:
    """The module name the installed package gives the file ``path`` (None: not ours)."""
    path = path.resolve()
    for folder, package in PACKAGE_DIRS.items():
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join([package, *parts])
    return None


def _skip_if_optional(e: ModuleNotFoundError) -> None:
    top = (e.name or "").split(".")[0]
    if top in OPTIONAL_IMPORTS:
        pytest.skip(f"needs {top}, which an optional extra installs (not installed here)")


class InstalledDoctestModule(DoctestModule):
    """A doctest module imported by its installed name (see the module docstring)."""

    module_name: str

    def _getobj(self):
        try:
            return importlib.import_module(self.module_name)
        except ModuleNotFoundError as e:
            _skip_if_optional(e)
            raise


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    name = installed_name(file_path)
    swapped = []
    for c in collectors or []:
        if type(c) is DoctestModule:
            if name is None:  # a test module or this file: the doctests are the package's
                continue
            c = InstalledDoctestModule.from_parent(parent, path=file_path)
            c.module_name = name
        swapped.append(c)
    return swapped


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """An example that imports a missing optional library is a skip, not a failure."""
    try:
        return (yield)
    except doctest.UnexpectedException as e:
        if isinstance(e.exc_info[1], ModuleNotFoundError):
            _skip_if_optional(e.exc_info[1])
        raise
