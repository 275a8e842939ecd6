"""The wasm fork server: a small process with wasmtime loaded that forks one child per wasm
execution, and the runner's handle on it.

A child per execution is what lets the runner end a wasm task at once (see `wasm_child`).
Starting a fresh interpreter for each costs about 35 ms here, most of it loading wasmtime
(multiprocessing's "spawn", 47 ms); forking a process that has it loaded costs about 2 ms.
multiprocessing's forkserver forks too (5 ms), but prepares every child by re-running the
parent's `__main__` (a whole program when that is a `python -m` module or an unguarded
script), so the fork server is our own, and small:

* the runner starts it once per process (`python -m ...wasm_zygote FD`), in a session of its
  own (a Ctrl-C at the terminal is the runner's to handle) with `/` as its directory;
* per execution, the runner sends the path of the request file and two descriptors over a
  Unix socket: the write end of the child's report pipe and its log file. The server forks;
  the child runs `run_child`; the server reaps it and writes its exit status (`status`, as
  `Popen.returncode` words it) on the same pipe, so the runner reads the child's messages
  then its status, then end of file;
* it has no thread, so forking it is safe, and it ends when the runner does (its socket
  reaches end of file); the children ask to be killed when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from klippfisk.engine.executors.local.wasm_child import run_child

__all__ = ["ChildProcess", "spawn_child"]

MAX_PATH = 4096
CRASHED = 70  # the child's exit status when run_child raised (EX_SOFTWARE)


class ChildProcess:
    """The runner's side of one child: its messages, then its exit status, and its kill."""

    def __init__(self, reports: Iterator[dict[str, Any]], pid: int) -> None:
        self._reports = reports
        self.status: int | None = None
        try:  # signals reach this very process, never one that reused its pid
            self.pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # it has ended already
            self.pidfd = None

    def next(self) -> dict[str, Any] | None:
        """The child's next message (none once it has ended: `status` then says how)."""
        for message in self._reports:
            if "status" in message:
                self.status = message["status"]
            else:
                return message
        return None

    def kill(self) -> None:
        """SIGKILL the child if it is still there."""
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def close(self) -> None:
        """Read to the end (the status) and let go of the descriptors."""
        while self.next() is not None:
            pass
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def spawn_child(request: Path, log: Path) -> ChildProcess:
    """Fork a child for the request file `request`, its output going to `log`; once it has
    said its pid. Raises OSError if no child could be had."""
    read, write = os.pipe()
    try:
        with open(log, "ab") as log_file:
            _server().send(request, write, log_file.fileno())
    finally:
        os.close(write)
    reports = _messages(read)
    first = next(reports, None)
    if first is None or "pid" not in first:
        raise OSError(f"the wasm fork server could not start a child ({first})")
    return ChildProcess(reports, first["pid"])


def _messages(fd: int) -> Iterator[dict[str, Any]]:
    with open(fd, "rb") as pipe:
        for line in pipe:
            yield json.loads(line)


class _Server:
    """The runner's connection to the fork server process."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.socket = mine
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", __name__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        self.lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, request: Path, report: int, log: int) -> None:
        with self.lock:
            socket.send_fds(self.socket, [os.fsencode(request)], [report, log])


_instance: _Server | None = None
_instance_lock = threading.Lock()


def _server() -> _Server:
    """The process's fork server, started on first use and again if it has died."""
    global _instance
    with _instance_lock:
        if _instance is None or not _instance.alive:
            _instance = _Server()
        return _instance


# --- the fork server process ---------------------------------------------------------------


def serve(control: socket.socket) -> None:
    """Fork a child per request until the runner closes its end of `control`."""
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the selector
    reports: dict[int, int] = {}  # child pid -> its report pipe, for its status
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _, _ = socket.recv_fds(control, MAX_PATH, 2)
                if not message:
                    return  # the runner has ended
                report, log = fds
                others = [control.fileno(), wake_read, wake_write, *reports.values()]
                try:
                    reports[_fork(message, report, log, others)] = report
                except OSError:  # no process to be had: the runner reads end of file, no pid
                    os.close(report)
                os.close(log)
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)
                _reap(reports)


def _fork(request: bytes, report: int, log: int, others: list[int]) -> int:
    """Fork; the child closes the server's descriptors (`others`: the socket, the wake-up
    pipe, other children's report pipes, which must reach end of file when those end)."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in others:
            os.close(fd)
        os.dup2(log, 1)
        os.dup2(log, 2)
        run_child(os.fsdecode(request), report, parent)
    except BaseException:  # a bug of ours: into the log, and a status that says so
        traceback.print_exc()
        status = CRASHED
    finally:
        os._exit(status)


def _reap(reports: dict[int, int]) -> None:
    """Collect every ended child and tell its runner how it ended."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        report = reports.pop(pid, None)
        if report is not None:
            status = os.waitstatus_to_exitcode(wait_status)
            with contextlib.suppress(OSError):
                os.write(report, json.dumps({"status": status}).encode() + b"\n")
            os.close(report)


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
