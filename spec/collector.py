"""Pausing CPython's cyclic garbage collector while a big document is loaded."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_PAUSE_FROM = 256 * 1024  # characters


@contextmanager
def collector_paused(text: str) -> Iterator[None]:
    """Loading a big document allocates millions of small objects in one go, and CPython's
    cyclic collector re-scans the growing heap again and again meanwhile (measured: 3.3 MB of
    YAML took 14.5 s of CPU with it, 6 s without). Nothing built here holds cycles, so for big
    inputs the collector waits until the end. Only ever re-enabled if it was on."""
    if len(text) < _PAUSE_FROM or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
