"""The library's faces (`klippfisk`, `klippfisk.engine`) import their names on first use, and
each name is the very object the module behind it defines."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import klippfisk
import klippfisk.engine as engine

FACES = {"klippfisk": klippfisk, "klippfisk.engine": engine}


def type_checking_imports(face: ModuleType) -> dict[str, str]:
    """{name: module} as the face's `if TYPE_CHECKING:` block imports them."""
    tree = ast.parse(Path(str(face.__file__)).read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    return {
        alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize(("face", "name"), [(f, n) for f, m in FACES.items() for n in m.__all__])
def test_every_public_name_is_its_modules_own_object(face: str, name: str):
    """Also holds the TYPE_CHECKING imports to what the face serves at run time."""
    module = FACES[face]
    home = importlib.import_module(type_checking_imports(module)[name])

    assert getattr(module, name) is getattr(home, name)


@pytest.mark.parametrize("face", FACES)
def test_type_checkers_see_every_public_name_and_no_other(face: str):
    module = FACES[face]
    assert sorted(type_checking_imports(module)) == sorted(module.__all__)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("face", FACES)
def test_an_unknown_name_is_an_attribute_error(face: str):
    with pytest.raises(AttributeError, match="no attribute 'Ledgr'"):
        FACES[face].Ledgr  # noqa: B018


def test_from_engine_import_works():
    from klippfisk.engine import Ledger, rfc3339

    assert Ledger.__module__ == "klippfisk.engine.ledger.application"
    assert rfc3339.__module__ == "klippfisk.engine.wire"


def test_import_klippfisk_loads_neither_the_compiler_nor_the_ledger():
    """`import klippfisk` is free: a library user pays for what they use, on first use."""
    probe = (
        "import sys, klippfisk; print(sorted(m for m in sys.modules"
        " if m.startswith(('klippfisk.', 'eventsourcing', 'yaml'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
