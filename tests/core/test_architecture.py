"""The architecture as tests: the wheel has one top-level package; imports go one way down
the four floors (cli → app → toolkit | export | bench → the core: import-linter's layers
contract, on the package as it installs); a forbidden import breaks the contract and the
report names the importer; first-party imports sit at module level; the CLI runs anywhere
and importing it loads no heavy library.

The tests that build the wheel and run lint-imports are marked slow."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = ("edgeproof", "toolkit", "export", "bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from this checkout (no build isolation: offline, the same setuptools)."""
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("edgeproof-*.whl")
    return whl


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked: the package laid out as pip installs it."""
    root = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(root)
    return root


def _lint(site: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe if exe.exists() else shutil.which("lint-imports")),
           "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    # PYTHONPATH first: the unpacked wheel, not the editable install, is what is analysed.
    return subprocess.run(cmd, cwd=site, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_wheel_has_exactly_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        tops = {name.split("/")[0] for name in z.namelist()}
        names = set(z.namelist())
    assert {t for t in tops if not t.endswith(".dist-info")} == {"edgeproof"}
    for sub in ("cli", "app", "toolkit", "export", "bench"):  # every floor is inside it
        assert f"edgeproof/{sub}/__init__.py" in names
    assert "edgeproof/app/templates/report.html.j2" in names  # the page template ships


def test_the_contract_lists_the_four_floors():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    floors = [layer for layer in layers if layer != "__main__"]
    assert floors[:3] == ["cli", "app", "toolkit | export | bench"] and len(floors) == 4
    core = {m.strip() for m in floors[3].split(":")}
    flat = {p.stem for p in (ROOT / "edgeproof").glob("*.py")} - {"__init__", "__main__"}
    assert core == flat, "edgeproof/*.py is the core: every module there is in its layer"


@pytest.mark.slow
def test_imports_go_one_way(site):
    r = _lint(site)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout and "BROKEN" not in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("module,code,importer", [
    # a subpackage importing a sibling, hidden inside a function
    ("export/formats.py", "def _sneak():\n    from edgeproof.bench import core\n",
     "edgeproof.export.formats"),
    # the core reaching up into a subpackage
    ("datasets.py", "from edgeproof.toolkit import train\n", "edgeproof.datasets"),
    # a subpackage reaching up into the application floor
    ("toolkit/evaluate.py", "def _sneak():\n    import edgeproof.app.run\n",
     "edgeproof.toolkit.evaluate"),
    ("bench/plots.py", "from edgeproof.app import reporting\n", "edgeproof.bench.plots"),
    # the application reaching up into the CLI
    ("app/run.py", "def _sneak():\n    from edgeproof.cli import common\n", "edgeproof.app.run"),
])
def test_a_forbidden_import_breaks_the_contract(site, tmp_path, module, code, importer):
    bad = tmp_path / "site"
    shutil.copytree(site, bad)
    with open(bad / "edgeproof" / module, "a") as fh:
        fh.write("\n\n" + code)
    r = _lint(bad)
    assert r.returncode != 0 and "0 kept, 1 broken" in r.stdout, r.stdout
    assert "BROKEN" in r.stdout and importer in r.stdout, r.stdout


def _function_level_imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                yield node.level, node.module or "", node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield 0, alias.name, node.lineno


def test_first_party_imports_sit_at_module_level():
    """An import inside a function may only defer a heavy library; our own modules import
    cheaply (TensorFlow is reached through edgeproof.tfcompat), so they go at the top,
    where the import graph and the reader see them."""
    found = [f"{p.relative_to(ROOT)}:{line} {mod}"
             for folder in SOURCES for p in sorted((ROOT / folder).rglob("*.py"))
             for level, mod, line in _function_level_imports(p)
             if level or mod.split(".")[0] == "edgeproof"]
    assert found == []


@pytest.mark.parametrize("argv", [["edgeproof", "--help"],
                                  [sys.executable, "-m", "edgeproof", "--help"]])
def test_cli_runs_from_any_folder(tmp_path, argv):
    exe = Path(sys.executable).with_name("edgeproof")  # the console script pip installed
    if argv[0] == "edgeproof" and exe.exists():
        argv = [str(exe), *argv[1:]]
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: edgeproof") and "runtimes" in r.stdout


def test_importing_the_package_imports_no_heavy_library():
    code = ("import sys, edgeproof.cli.main, edgeproof.app.run, edgeproof.app.bench, "
            "edgeproof.app.optimize, edgeproof.app.report_page, edgeproof.bench.suite, "
            "edgeproof.bench.plots, edgeproof.bench.table, edgeproof.figures; "
            "print(sorted(m for m in ('tensorflow', 'onnxruntime', 'tf2onnx', 'matplotlib.pyplot')"
            " if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
