"""The bot's loop against a loopback stand-in for its PDS and a real ledger: who sees what,
what happens when replies or logins fail, and that slow jobs do not block other mentions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from atproto import Client

from klippfisk.adapters.bluesky.bot import Bot, BotAccount
from klippfisk.adapters.bluesky.state import BotState, PendingMention
from klippfisk.adapters.bluesky.throttle import ServerThrottle
from klippfisk.adapters.settings import BotSettings
from klippfisk.engine import JobState, Ledger, Source
from klippfisk.spec import compile_document
from tests.unit.bluesky.standin_pds import StandInServer

ALICE, BOB, BOT = "did:plc:alice", "did:plc:bob", "did:plc:bot"
JOB = b"""
Name: slow
Type: batch
Tasks:
  - Name: main
    Engine: {Type: docker, Params: {Image: "ubuntu:24.04", Entrypoint: [echo, hi]}}
"""


class RunningBot:
    """A Bot running its loop in a thread; `stop()` returns what escaped `run`, if anything."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.escaped: BaseException | None = None
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.bot.run()
        except BaseException as exc:  # what the CLI would have seen
            self.escaped = exc

    def stop(self) -> BaseException | None:
        self.bot.stopping.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        return self.escaped


def eventually(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[BotState]:
    opened = BotState(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def start_bot(
    pds: StandInServer, ledger: Ledger, state: BotState
) -> Iterator[Callable[..., RunningBot]]:
    running: list[RunningBot] = []

    def start(**settings: object) -> RunningBot:
        defaults: dict[str, object] = {
            "service": pds.url,
            "handle": "jobs.test",
            "app_password": "app-pw",
            "poll_seconds": 0.02,
            "retry_seconds": 0.01,
            "wait_seconds": 0.2,
            "fetch_allow": [pds.address],
        }
        bot_settings = BotSettings.model_validate(defaults | settings)
        client = Client(base_url=pds.url)
        account = BotAccount(client, BOT, ServerThrottle(retries=0))
        bot = Bot(account, ledger, state, bot_settings, threading.Event())
        running.append(RunningBot(bot))
        return running[-1]

    yield start
    for bot in running:
        bot.stop()


def mention(state: BotState, author: str, text: str, n: int) -> str:
    uri = f"at://{author}/app.bsky.feed.post/3kaaaaaaaaa{n:02d}"
    record = {"$type": "app.bsky.feed.post", "text": f"@jobs.test {text}", "createdAt": "x"}
    state.remember(
        [PendingMention(uri, f"bafy{n}", author, f"2026-01-01T00:00:{n:02d}Z", record)], None
    )
    return uri


def test_help_is_answered_while_max_concurrent_slow_jobs_run(
    pds: StandInServer, ledger: Ledger, state: BotState, start_bot: Callable[..., RunningBot]
) -> None:
    pds.files["/slow.yaml"] = JOB  # no runner here: the jobs stay pending until finished below
    runs = [mention(state, ALICE, f"job run {pds.url}/slow.yaml", n) for n in (1, 2)]
    running = start_bot(max_concurrent=2)
    eventually(lambda: len(pds.replies()) == 2, "two follow-up replies")
    help_uri = mention(state, BOB, "help", 3)
    eventually(lambda: state.status(help_uri) == "done", "help answered")
    jobs = [ledger.list_jobs(source_ref=uri).items[0] for uri in runs]
    assert all(job.state == JobState.PENDING for job in jobs)  # still running, help answered
    assert all(job.namespace == "bluesky" for job in jobs)

    for job in jobs:  # the jobs end; the watcher posts their final replies
        ledger.queue(job.id, reason="test")
        execution = ledger.create_execution(job.id, executor="local", node="local")
        ledger.start_execution(job.id, execution)
        ledger.complete_execution(job.id, execution, exit_code=0, stdout="hi\n")
    eventually(lambda: all(state.status(uri) == "done" for uri in runs), "final replies")
    finals = [text for text in pds.replies() if "completed" in text]
    assert sorted(text.split()[1] for text in finals) == sorted(job.id for job in jobs)
    assert all(text.endswith("hi\n") for text in finals)
    assert running.stop() is None


def test_a_reply_the_server_keeps_refusing_ends_in_a_short_fallback_never_in_silence(
    pds: StandInServer, state: BotState, start_bot: Callable[..., RunningBot]
) -> None:
    pds.refuse_posts = lambda text: not text.startswith("Sorry")  # 500 for the full answer
    uri = mention(state, ALICE, "job run http://127.0.0.1:9/job.yaml", 1)  # a refused fetch
    running = start_bot()
    eventually(lambda: state.status(uri) == "done", "the mention finished")
    assert running.stop() is None
    assert len(pds.refused) == 3 and pds.refused[0].startswith("I did not get the job file")
    assert pds.replies() == [
        "Sorry, I could not answer this job run; please mention me again later."
    ]


def test_failures_are_counted_in_the_state_file_and_held_back_between_tries(
    pds: StandInServer, state: BotState, start_bot: Callable[..., RunningBot]
) -> None:
    pds.refuse_posts = lambda text: True
    uri = mention(state, ALICE, "help", 1)
    running = start_bot(retry_seconds=3600, retry_max_seconds=7200)  # next try: in an hour
    eventually(lambda: state.failures(uri) is not None, "the first failure recorded")
    assert running.stop() is None
    attempts, retry_at = state.failures(uri) or (0, 0.0)
    assert attempts == 1 and retry_at > time.time() + 3000
    assert len(pds.refused) == 1  # not tried again on every poll
    assert state.status(uri) == "pending"


def test_a_network_blip_while_logging_in_again_does_not_stop_the_bot(
    pds: StandInServer, state: BotState, start_bot: Callable[..., RunningBot]
) -> None:
    pds.session_expired = True
    pds.drop_logins = True
    running = start_bot(max_logins=2)
    eventually(lambda: state.logins_since(0) == 2, "two logins tried")
    polls = pds.calls.count("/xrpc/app.bsky.notification.listNotifications")
    eventually(  # the spent login budget does not stop it either: it keeps polling
        lambda: pds.calls.count("/xrpc/app.bsky.notification.listNotifications") > polls + 3,
        "more polls",
    )
    assert running.stop() is None
    assert pds.calls.count("/xrpc/com.atproto.server.createSession") == 2


def test_describe_shows_only_the_bots_jobs_and_stdout_only_to_their_author(
    pds: StandInServer, ledger: Ledger, state: BotState, start_bot: Callable[..., RunningBot]
) -> None:
    pds.files["/job.yaml"] = JOB
    run = mention(state, ALICE, f"job run {pds.url}/job.yaml", 1)
    running = start_bot()
    eventually(lambda: len(pds.replies()) == 1, "the follow-up")
    job = ledger.list_jobs(source_ref=run).items[0]
    ledger.queue(job.id, reason="test")
    execution = ledger.create_execution(job.id, executor="local", node="local")
    ledger.start_execution(job.id, execution)
    ledger.complete_execution(job.id, execution, exit_code=0, stdout="alice's secret\n")
    eventually(lambda: state.status(run) == "done", "the final reply")
    other = compile_document(JOB.replace(b"slow", b"ops-job"))
    cli_job = ledger.submit(other, source=Source(adapter="cli", actor="ops", ref="j.yaml"))

    asks = [
        mention(state, ALICE, f"job describe {job.id}", 2),
        mention(state, BOB, f"job describe {job.id}", 3),
        mention(state, BOB, f"job describe {cli_job.job_id}", 4),
    ]
    eventually(lambda: all(state.status(uri) == "done" for uri in asks), "three answers")
    assert running.stop() is None
    texts = pds.replies()
    assert sum("alice's secret" in text for text in texts) == 2  # final reply + alice's ask
    assert f"Job {job.id} completed (execution {execution}, exit 0)." in texts
    assert f"I know no job {cli_job.job_id}; use the job id from my reply to your job run." in (
        texts
    )
