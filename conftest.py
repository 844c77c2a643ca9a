"""Doctests of the installed package, each module imported once under its installed name.

``python -m pytest -q`` (testpaths and ``--doctest-modules`` in pyproject) and
``python -m pytest --doctest-modules --pyargs edgeproof edgeproof.export edgeproof.bench
edgeproof.toolkit`` both collect through these hooks (tests/doctest_collection.py says why).
"""

from tests.doctest_collection import pytest_collect_file, pytest_runtest_call  # noqa: F401
