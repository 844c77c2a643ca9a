"""Nothing is written half (DESIGN rule 5): an AST scan of edgeproof/, toolkit/, export/ and
bench/ finds no direct file write outside edgeproof/atomic.py, except the few listed in
``ALLOWED`` with the reason each is not a file written for the user; a second test plants
each kind of direct write in a copy of the sources and shows the scan catches it.

What counts as a direct write: ``open`` (builtin or a method) in a mode with w, a, x or +;
``os.open`` with write flags; ``.write_text`` / ``.write_bytes``; ``.savefig`` to a path;
``shutil.copy*`` / ``shutil.move``; ``numpy.save*`` to a path; ``json.dump`` /
``pickle.dump`` to a handle; ``os.rename`` / ``os.replace``; a library's ``.save`` /
``.save_weights`` to a path. Not counted: writes into an in-memory buffer (``io.BytesIO``,
``io.StringIO``) or a stream (``fileobj=``), and scratch files whose path comes from a
temporary directory made in the same function (``tempfile.TemporaryDirectory``)."""

from __future__ import annotations

import ast
import functools
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = ("edgeproof", "toolkit", "export", "bench")
ATOMIC = "edgeproof/atomic.py"  # the one module that writes files

# (file, kind) -> (how many, why it is not a file written for the user)
ALLOWED = {
    ("bench/rss.py", "open-write"): (
        1, "writes '5' to /proc/self/clear_refs: resets the kernel's peak-RSS counter"),
    ("toolkit/train.py", "save_weights"): (
        1, "the head phase's weights for --resume (head_phase.weights.h5, written by Keras "
           "beside backup/): training state, not an output; the head_done marker after it "
           "goes through the atomic writer"),
    ("bench/agent.py", "open-write"): (
        1, "the device agent runs on the remote board with the standard library and numpy "
           "only (it imports nothing from edgeproof): result.json in its own scratch folder, "
           "read back over SSH by bench/remote.py, which writes the user's files"),
    ("bench/agent.py", "json.dump"): (1, "the same result.json, on the board"),
    ("bench/agent.py", "numpy.save"): (1, "raw outputs in the agent's scratch folder, on the board"),
    ("export/keras_export.py", "shutil.copytree"): (
        1, "_copy_serving copies a serving SavedModel into the TemporaryDirectory its caller "
           "(convert_saved_model) made; the files are read back for the atomic tree writer"),
}

MODE = re.compile(r"[rwaxbt+]{1,3}")
BUFFERS = {"BytesIO", "StringIO"}
COPIES = {"copy", "copy2", "copyfile", "copytree", "move"}
NP_SAVES = {"save", "savez", "savez_compressed", "savetxt"}
TEMPORARY = {"TemporaryDirectory", "mkdtemp", "NamedTemporaryFile"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _buffer_names(tree) -> set[str]:
    """Names assigned an in-memory buffer anywhere in the module."""
    return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _dotted(node.value.func).split(".")[-1] in BUFFERS
            for t in node.targets if isinstance(t, ast.Name)}


def _to_buffer(call, buffers) -> bool:
    return any(isinstance(a, ast.Name) and a.id in buffers for a in call.args)


def _open_mode(call) -> str | None:
    for k in call.keywords:
        if k.arg == "mode" and isinstance(k.value, ast.Constant):
            return str(k.value.value)
    modes = [a.value for a in call.args if isinstance(a, ast.Constant)
             and isinstance(a.value, str) and MODE.fullmatch(a.value)]
    return modes[0] if modes else None


def write_kind(call: ast.Call, buffers: set[str]) -> str | None:
    """The kind of direct file write ``call`` is, or None."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    owner = _dotted(func.value) if isinstance(func, ast.Attribute) else ""
    if name == "open" and owner == "os":
        flags = {_dotted(n).split(".")[-1] for a in call.args for n in ast.walk(a)}
        return "os.open" if flags & {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND"} else None
    if name == "open":
        if any(k.arg == "fileobj" for k in call.keywords):
            return None  # a stream, not a path
        mode = _open_mode(call)
        return "open-write" if mode and set(mode) & set("wax+") else None
    if name in ("write_text", "write_bytes"):
        return name
    if name == "savefig":
        return None if _to_buffer(call, buffers) else "savefig"
    if owner == "shutil" and name in COPIES:
        return f"shutil.{name}"
    if owner in ("np", "numpy") and name in NP_SAVES:
        return None if _to_buffer(call, buffers) else "numpy.save"
    if owner in ("json", "pickle") and name == "dump":
        return f"{owner}.dump"
    if owner == "os" and name in ("rename", "replace", "renames"):
        return f"os.{name}"
    if name in ("save", "save_weights") and isinstance(func, ast.Attribute) and call.args \
            and owner != "figures":  # figures.save is the atomic figure writer
        return None if _to_buffer(call, buffers) else name
    return None


def _target_names(target) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _mentions(expr, temp: set[str]) -> bool:
    return any((isinstance(x, ast.Call) and _dotted(x.func).split(".")[-1] in TEMPORARY)
               or (isinstance(x, ast.Name) and x.id in temp) for x in ast.walk(expr))


def temporary_names(scope) -> set[str]:
    """Names in ``scope`` (a function, or a module's top level) that hold a temporary
    directory or a path built from one: ``with TemporaryDirectory() as d``, ``tmp =
    TemporaryDirectory()``, ``out = os.path.join(tmp.name, "m")``, ``src, q = Path(d) / ...``."""
    pairs = []
    for node in ast.walk(scope):
        if isinstance(node, ast.With):
            pairs += [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars]
        elif isinstance(node, ast.Assign):
            pairs += [(t, node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs.append((node.target, node.value))
    temp: set[str] = set()
    while True:  # to a fixed point: a path built from a temporary path is temporary
        more = {n for target, value in pairs if _mentions(value, temp)
                for n in _target_names(target)} - temp
        if not more:
            return temp
        temp |= more


class _Writes(ast.NodeVisitor):
    """Collects (kind, line) of direct writes; a write whose arguments name a temporary
    path of its own function is scratch, not a file for the user."""

    def __init__(self, tree):
        self.buffers, self.found = _buffer_names(tree), []
        self.scopes = [temporary_names(tree)]

    def visit_FunctionDef(self, node):
        self.scopes.append(temporary_names(node))
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        kind = write_kind(node, self.buffers)
        names = {n.id for a in [*node.args, *(k.value for k in node.keywords)]
                 for n in ast.walk(a) if isinstance(n, ast.Name)}
        if kind and not names & self.scopes[-1]:
            self.found.append((kind, node.lineno))
        self.generic_visit(node)


@functools.lru_cache(maxsize=None)
def _scan(rel: str, text: str) -> tuple:
    tree = ast.parse(text, rel)
    visitor = _Writes(tree)
    visitor.visit(tree)
    return tuple(visitor.found)


def direct_writes(root: Path) -> list[tuple[str, str, int]]:
    """(file, kind, line) of every direct write under ``root``'s source folders."""
    found = []
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel != ATOMIC:  # a file's scan is cached by its text: copies cost nothing
                found += [(rel, kind, line) for kind, line in _scan(rel, path.read_text())]
    return found


def not_allowed(found) -> list[str]:
    """Writes beyond the allowlist (a listed file and kind with more writes than listed)."""
    counts = Counter((f, k) for f, k, _ in found)
    return [f"{f}:{line} {k}" for f, k, line in found
            if counts[(f, k)] > ALLOWED.get((f, k), (0, ""))[0]]


def test_no_direct_file_write_outside_the_atomic_module():
    found = direct_writes(ROOT)
    assert not_allowed(found) == [], "write through edgeproof.atomic (or list it, with why)"


def test_every_allowed_write_still_exists():
    """A stale allowlist entry would silently permit a new write of that kind there."""
    counts = Counter((f, k) for f, k, _ in direct_writes(ROOT))
    stale = {key: n for key, (n, _) in ALLOWED.items() if counts[key] != n}
    assert stale == {}, f"update ALLOWED: found {dict(counts)}"


@pytest.fixture
def copy_of_the_sources(tmp_path):
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.j2"))
    return tmp_path


PLANTED = {
    "open-write": "def _w(p):\n    with open(p, 'w') as fh:\n        fh.write('x')\n",
    "open-append": "def _w(p):\n    with p.open(mode='ab') as fh:\n        fh.write(b'x')\n",
    "write_text": "def _w(p):\n    p.write_text('half a report')\n",
    "write_bytes": "def _w(p):\n    p.write_bytes(b'half a model')\n",
    "savefig": "def _w(fig, out):\n    fig.savefig(out / 'latency.png')\n",
    "shutil.copy2": "import shutil\ndef _w(a, b):\n    shutil.copy2(a, b)\n",
    "numpy.save": "import numpy as np\ndef _w(p, x):\n    np.savez(p, x=x)\n",
    "json.dump": "import json\ndef _w(d, fh):\n    json.dump(d, fh)\n",
    "os.replace": "import os\ndef _w(a, b):\n    os.replace(a, b)\n",
    "save": "def _w(model, p):\n    model.save(p)\n",
    "a second /proc-style write in bench/rss.py": "def _w():\n    open('/tmp/x', 'w')\n",
    "a name that is temporary only in another function": (
        "import tempfile\ndef _a():\n    with tempfile.TemporaryDirectory() as d:\n"
        "        return d\ndef _w(d):\n    d.write_text('x')\n"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_the_scan_catches_a_planted_write(copy_of_the_sources, case):
    target = "bench/rss.py" if case.startswith("a second") else "bench/plots.py"
    before = set(not_allowed(direct_writes(copy_of_the_sources)))
    with open(copy_of_the_sources / target, "a") as fh:  # the test's own scratch copy
        fh.write("\n\n" + PLANTED[case])
    caught = set(not_allowed(direct_writes(copy_of_the_sources))) - before
    assert caught and all(c.startswith(f"{target}:") for c in caught), caught


@pytest.mark.parametrize("code", [
    "import io\ndef _w(fig):\n    buf = io.BytesIO()\n    fig.savefig(buf, format='png')\n",
    "import io\nimport numpy as np\ndef _w(x):\n    buf = io.BytesIO()\n    np.save(buf, x)\n",
    "import tempfile\ndef _w(model):\n    with tempfile.TemporaryDirectory() as d:\n"
    "        model.save(d + '/m.keras')\n",
    "import os, tempfile\ndef _w(model):\n    tmp = tempfile.TemporaryDirectory()\n"
    "    out = os.path.join(tmp.name, 'model')\n    model.save(out)\n    return tmp\n",
    "import tarfile\ndef _w(buf):\n    tarfile.open(fileobj=buf, mode='w')\n",
    "def _r(p):\n    with open(p, 'rb') as fh:\n        return fh.read()\n",
])
def test_buffers_streams_scratch_folders_and_reads_are_not_writes(copy_of_the_sources, code):
    before = direct_writes(copy_of_the_sources)
    with open(copy_of_the_sources / "bench" / "plots.py", "a") as fh:
        fh.write("\n\n" + code)
    assert direct_writes(copy_of_the_sources) == before
