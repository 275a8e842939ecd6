"""argparse choices read from the engine only when a command needs them.

Every command's parser is built on every run, so choices taken from the engine at build
time (job states, executor names) would import the ledger and its store drivers even for
`klippfisk --help` or `klippfisk spec validate`. These choices are read on first use:
when the option is given, or when its command's help is printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import overload

__all__ = ["LateChoices", "late_choices"]


class LateChoices(Sequence[str]):
    """The values `load` returns, loaded once on first use."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    def _loaded(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())


def late_choices(action: argparse.Action, load: Callable[[], Iterable[str]]) -> None:
    """Give an added option its choices late.

    Set after `add_argument`, which formats an option's choices once to check its metavar
    and so would load them at once; help and error messages read the same as with a list.
    """
    action.choices = LateChoices(load)
