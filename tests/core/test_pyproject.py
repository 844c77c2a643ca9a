"""pyproject.toml names only what exists: packages, their folders and data, the import
contract's modules, and the files its comments point a reader to."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads(TEXT)
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _folder(package: str) -> Path:
    """The repository folder setuptools installs ``package`` from (longest package-dir)."""
    dirs = SETUPTOOLS["package-dir"]
    parent = max((p for p in dirs if package == p or package.startswith(p + ".")), key=len)
    rest = package[len(parent):].lstrip(".").split(".") if package != parent else []
    return ROOT / dirs[parent] / Path(*rest)


def test_every_package_is_a_folder_with_an_init_and_every_folder_is_a_package():
    packages = set(SETUPTOOLS["packages"])
    for package in packages:
        assert (_folder(package) / "__init__.py").is_file(), package
    on_disk = {f"{package}.{sub.name}" for package in packages
               for sub in _folder(package).iterdir() if (sub / "__init__.py").is_file()}
    assert on_disk <= packages, on_disk - packages


def test_every_package_data_pattern_matches_a_file():
    for package, patterns in SETUPTOOLS.get("package-data", {}).items():
        for pattern in patterns:
            assert list(_folder(package).glob(pattern)), (package, pattern)


def test_every_module_the_import_contract_names_exists():
    for contract in PYPROJECT["tool"]["importlinter"]["contracts"]:
        for container in contract["containers"]:
            base = _folder(container)
            for layer in contract["layers"]:
                for name in re.split(r"[|:]", layer):
                    sub = _folder(f"{container}.{name.strip()}")
                    assert sub.with_suffix(".py").is_file() or sub.is_dir(), (layer, name)
            if contract.get("exhaustive"):
                named = {n.strip() for layer in contract["layers"] for n in re.split(r"[|:]", layer)}
                present = {p.stem for p in base.glob("*.py") if p.stem != "__init__"}
                assert present <= named, present - named


def test_every_file_a_comment_or_field_names_exists():
    named = set(re.findall(r"[\w./-]+\.(?:py|md|toml|j2)\b", TEXT))
    named.discard("pyproject.toml")
    assert named, "expected README.md at least"
    assert [n for n in sorted(named) if not (ROOT / n).exists()] == []
