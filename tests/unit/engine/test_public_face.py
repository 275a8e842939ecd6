"""`engine`'s public names import on first use and are the very objects their modules define."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import klippfisk.engine as engine

INIT = Path(engine.__file__)


def type_checking_imports() -> dict[str, str]:
    """{name: module} as the `if TYPE_CHECKING:` block of engine/__init__.py imports them."""
    tree = ast.parse(INIT.read_text())
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


@pytest.mark.parametrize("name", engine.__all__)
def test_every_public_name_is_its_modules_own_object(name):
    """Also holds the TYPE_CHECKING imports to what the package serves at run time."""
    home = importlib.import_module(type_checking_imports()[name])

    assert getattr(engine, name) is getattr(home, name)


def test_type_checkers_see_every_public_name_and_no_other():
    assert sorted(type_checking_imports()) == sorted(engine.__all__)


def test_from_engine_import_works_and_an_unknown_name_is_an_attribute_error():
    from klippfisk.engine import Ledger, rfc3339

    assert (
        Ledger.__module__ == "klippfisk.engine.ledger"
        and rfc3339.__module__ == "klippfisk.engine.wire"
    )
    with pytest.raises(AttributeError, match="no attribute 'Ledgr'"):
        engine.Ledgr  # noqa: B018
    assert set(engine.__all__) <= set(dir(engine))
