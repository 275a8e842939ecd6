"""The local Bluesky network, from Python: start it, enter it, act on it as users and bot.

The network (PLC + PDS + AppView from @atproto/dev-env, PostgreSQL) runs inside a private
network namespace with loopback only (start.sh), after setup.sh has installed what it needs
(quick when already installed). The calling process stays in the host namespace, so every
other loopback service keeps working; it reaches the network in two ways:

- `LocalNet.call(fn, ...)` runs `fn` on one worker thread that has joined the namespace with
  setns(2) (a network namespace is per thread), so SDK clients made and used there talk to
  the PDS directly. Sockets keep their namespace, so a server socket bound there (the job-file
  server) can be served from any thread.
- `LocalNet.command(...)` prefixes a command with nsenter, for processes such as the bot,
  which runs as its own `klippfisk bot` process so that tests can stop and kill it.

Used by the pytest fixtures (plugin.py) and by bench/bot.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JOB_FILES = REPO / "tests" / "data" / "bluesky"
PASSWORD = "localnet-pass"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _join_namespace(pid: int) -> None:
    """Move the calling thread into the network namespace of `pid`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into the local network failed: {os.strerror(errno)}")
    finally:
        os.close(fd)


@dataclass
class Account:
    """A user on the local network: handle, DID and a logged-in client (use it via call)."""

    handle: str
    did: str
    client: Any


@dataclass
class LocalNet:
    """The running local network and the ways into its namespace."""

    pid: int
    pds: str
    _pool: ThreadPoolExecutor = field(repr=False)
    _names: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn inside the namespace and return its result (exceptions propagate)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def command(self, *argv: str) -> list[str]:
        """argv prefixed so that it runs inside the namespace."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", *argv]

    def unique_handle(self, stem: str) -> str:
        """A handle no other test uses (the network lives for the whole session)."""
        return f"{stem}{next(self._names)}{secrets.token_hex(2)}.test"

    def account(self, stem: str) -> Account:
        """Create an account and log in; returns once the AppView knows its profile."""
        handle = self.unique_handle(stem)
        return self.call(self._create_account, handle)

    def mention(
        self, author: Account, bot: Account, command: str, url: str = "", reply_to: Any = None
    ) -> Any:
        """Post `@bot <command> <url>` as the Bluesky app does: a mention facet, and the link
        shortened in the text with the full URL only in its link facet; `reply_to` (a
        ReplyRef) makes it a reply inside a thread."""
        from atproto import client_utils

        text = client_utils.TextBuilder().mention(f"@{bot.handle}", bot.did).text(f" {command}")
        if url:
            text.text(" ").link(url.split("://", 1)[1][:18] + "...", url)
        return self.call(author.client.send_post, text, reply_to=reply_to)

    def replies(self, viewer: Account, post_uri: str, by: str) -> list[Any]:
        """Replies by the DID `by` to the post, oldest first, as `viewer` (the post's author)
        is notified of them. (Notifications show up within a second; the AppView's thread
        view can lag by several seconds.)"""

        def read() -> list[Any]:
            page = viewer.client.app.bsky.notification.list_notifications(
                params={"reasons": ["reply"], "limit": 100}
            )
            found = [
                n
                for n in page.notifications
                if n.author.did == by and n.record.reply and n.record.reply.parent.uri == post_uri
            ]
            return sorted(found, key=lambda n: n.indexed_at)

        return self.call(read)

    def posted_replies(self, bot: Account, post_uri: str) -> list[Any]:
        """The bot's reply records to the post, read from its repo on the PDS (the source of
        truth, no indexing lag): for counting that nothing was posted twice."""

        def read() -> list[Any]:
            records, cursor = [], None
            while True:
                page = bot.client.com.atproto.repo.list_records(
                    params={
                        "repo": bot.did,
                        "collection": "app.bsky.feed.post",
                        "limit": 100,
                        "cursor": cursor,
                    }
                )
                records += page.records
                cursor = page.cursor
                if not cursor or not page.records:
                    return [
                        r for r in records if r.value.reply and r.value.reply.parent.uri == post_uri
                    ]

        return self.call(read)

    def wait_for_replies(
        self, viewer: Account, post_uri: str, by: str, count: int, timeout: float = 60.0
    ) -> list[Any]:
        """Wait until the post has at least `count` replies by `by`; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.replies(viewer, post_uri, by)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} replies after {timeout} s")
            time.sleep(0.2)

    def _create_account(self, handle: str) -> Account:
        from atproto import Client, exceptions, models

        client = Client(base_url=self.pds)
        client.com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=handle, email=f"{handle}@example.com", password=PASSWORD
            )
        )
        client.login(handle, PASSWORD, fetch_bsky_profile=False)
        # The AppView indexes a new account from the PDS's firehose a moment later; until
        # then the profile (which send_post needs as `me`) is "not found".
        deadline = time.monotonic() + 30
        while client.me is None:
            try:
                client.me = client.get_profile(handle)
            except exceptions.BadRequestError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return Account(handle, client.me.did, client)


@dataclass
class JobServer:
    """A static HTTP server inside the namespace serving tests/data/bluesky."""

    address: str  # host:port, for the bot's fetch allow-list

    def url(self, name: str) -> str:
        return f"http://{self.address}/{name}"


class BotProcess:
    """`klippfisk bot` run inside the namespace as its own process, as deployed."""

    def __init__(self, net: LocalNet, env: dict[str, str], log_path: Path) -> None:
        self.net, self.env, self.log_path = net, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        code = "import sys; from klippfisk.adapters.cli import main; sys.exit(main(['bot']))"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.net.command(sys.executable, "-c", code),
            env={**os.environ, **self.env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def ledger(self) -> Any:
        """The bot's ledger (an engine.Ledger; close it when done)."""
        from klippfisk.engine import Ledger
        from klippfisk.engine.settings import Settings

        return Ledger.open(Settings(data_dir=Path(self.env["KLIPPFISK_DATA_DIR"])))

    @property
    def state_path(self) -> Path:
        return Path(self.env["KLIPPFISK_DATA_DIR"]) / "bot" / "state.db"

    def wait_until_done(self, uris: list[str], timeout: float = 60.0) -> None:
        """Wait until the bot has taken in and finished every mention in `uris`."""
        from klippfisk.adapters.bluesky.state import BotState

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state_path.exists():
                state = BotState(self.state_path)
                try:
                    if all(state.status(uri) == "done" for uri in uris):
                        return
                finally:
                    state.close()
            time.sleep(0.2)
        raise AssertionError(f"the bot still had work after {timeout} s:\n{self.log()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM and wait: a clean stop."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _run(script: str, timeout: float) -> str:
    done = subprocess.run(
        [str(HERE / script)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"tests/localnet/{script} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def running_localnet() -> Iterator[LocalNet]:
    """Install (first time only), start, and at the end stop the local Bluesky network."""
    if os.geteuid() != 0:
        raise RuntimeError("the local Bluesky network needs root (unshare, nsenter, runuser)")
    _run("setup.sh", timeout=900)
    ready = json.loads(_run("start.sh", timeout=240).strip().splitlines()[-1])
    run_dir = Path(os.environ.get("KLIPPFISK_LOCALNET_RUN", "/tmp/klippfisk-localnet"))
    pid = int((run_dir / "netns.pid").read_text())
    pool = ThreadPoolExecutor(
        1, thread_name_prefix="localnet", initializer=_join_namespace, initargs=(pid,)
    )
    try:
        yield LocalNet(pid=pid, pds=ready["pds"], _pool=pool)
    finally:
        pool.shutdown(wait=True)
        _run("stop.sh", timeout=60)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving_job_files(net: LocalNet) -> Iterator[JobServer]:
    """Serve tests/data/bluesky on the namespace's loopback (bound there, served from here)."""
    handler = functools.partial(_QuietFiles, directory=str(JOB_FILES))
    httpd = net.call(ThreadingHTTPServer, ("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield JobServer(f"127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_bot(
    net: LocalNet, job_server: JobServer, workdir: Path, **bot_settings: Any
) -> tuple[Account, BotProcess]:
    """A bot account with an app password, and a `klippfisk bot` process for it (not yet
    started) keeping its data in workdir; keyword arguments become KLIPPFISK_BOT__* settings."""
    from atproto import models

    account = net.account("jobs")
    app_password = net.call(
        account.client.com.atproto.server.create_app_password,
        models.ComAtprotoServerCreateAppPassword.Data(name="klippfisk-bot"),
    ).password
    settings = {
        "service": net.pds,
        "handle": account.handle,
        "app_password": app_password,
        "fetch_allow": json.dumps([job_server.address]),
        **{k: str(v) for k, v in bot_settings.items()},
    }
    env = {f"KLIPPFISK_BOT__{k.upper()}": v for k, v in settings.items()}
    env["KLIPPFISK_DATA_DIR"] = str(workdir / "bot-data")
    # The bot's jobs are strangers': with no Docker daemon on the test machine, their docker
    # tasks run in the host sandbox only because this operator allows it.
    env["KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR"] = "everyone"
    return account, BotProcess(net, env, workdir / f"bot-{secrets.token_hex(3)}.log")
