"""Waiting for what the kernel does on its own time (processes forking, dying, a sandbox torn
down), never to pass a deadline: those tests move a clock instead."""

from __future__ import annotations

import time
from collections.abc import Callable

# How long the kernel is given for such things before a test gives up.
KERNEL_SECONDS = 10.0


def eventually(condition: Callable[[], bool], seconds: float = KERNEL_SECONDS) -> bool:
    """Whether `condition` holds within `seconds`, looked at every 10 ms."""
    until = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.01)
    return True
