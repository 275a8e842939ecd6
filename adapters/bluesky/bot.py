"""The bot's loop: take mentions in, answer each one, exactly once, in its thread.

Every poll takes new mentions into the state file (intake.py) and hands each unfinished one
to a worker pool whose size is the concurrency cap. A worker applies the author's rate
limit, parses the command and answers it. `job run` fetches the file through the fetch
guard, compiles it, and submits it to the ledger with the post's URI as idempotency key and
the post as the job's source (adapter `bluesky`, actor = the author's DID, ref = the URI);
then waits. A job done within `wait_seconds` gets one reply with its ids and stdout; a slower
one gets a follow-up reply at once and the final reply when it ends. A mention is marked done
only after its final reply, so a restart resumes it: the submit returns the same job and the
replies' fixed record keys keep them from being posted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from atproto import Client, exceptions, models
from atproto_client.models.utils import get_or_create

from adapters.bluesky import messages
from adapters.bluesky.commands import Command, parse_command
from adapters.bluesky.fetch_guard import FetchError, FetchPolicy, fetch
from adapters.bluesky.intake import take_in
from adapters.bluesky.limits import AuthorLimiter, Verdict
from adapters.bluesky.posting import post_reply_once
from adapters.bluesky.reply import compose
from adapters.bluesky.session import login_again
from adapters.bluesky.state import BotState, PendingMention
from adapters.bluesky.throttle import ServerThrottle
from adapters.settings import BotSettings
from engine import JobNotFound, JobView, Ledger, LedgerError, Source
from spec import CompiledSpec, SpecError, compile_document

__all__ = ["Bot", "BotAccount"]

log = logging.getLogger(__name__)

ANSWER = "answer"
FOLLOW_UP = "follow-up"
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class BotAccount:
    """The logged-in bot: its client, its DID, and the throttle all calls go through."""

    client: Client
    did: str
    throttle: ServerThrottle


class _Mention:
    """One mention being answered: its post, parsed record, and how to reply to it."""

    def __init__(self, pending: PendingMention) -> None:
        self.pending = pending
        record = get_or_create(pending.record, models.AppBskyFeedPost.Record)
        if not isinstance(record, models.AppBskyFeedPost.Record):
            raise exceptions.ModelError("the mention is not a post record")
        self.record = record
        self.ref = models.ComAtprotoRepoStrongRef.Main(uri=pending.uri, cid=pending.cid)


class Bot:
    """Answers mentions over one ledger; `run` until `stopping` is set."""

    def __init__(
        self,
        account: BotAccount,
        ledger: Ledger,
        state: BotState,
        settings: BotSettings,
        stopping: threading.Event,
    ) -> None:
        self.account = account
        self.ledger = ledger
        self.state = state
        self.settings = settings
        self.limiter = AuthorLimiter(settings.author_limit, settings.author_window_seconds)
        self.fetch_policy = FetchPolicy(
            max_bytes=settings.fetch_max_bytes,
            total_timeout=settings.fetch_timeout_seconds,
            max_redirects=settings.fetch_max_redirects,
            allow=frozenset(settings.fetch_allow),
        )
        self.stopping = stopping
        self._pool = ThreadPoolExecutor(settings.max_concurrent, thread_name_prefix="bot")
        self._in_flight: set[str] = set()
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- the loop ---------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Take in new mentions and start work on every unfinished one; return how many new."""
        new = take_in(
            self.account.client,
            self.account.throttle,
            self.state,
            self.account.did,
            self.settings.backfill_limit,
        )
        for pending in self.state.pending():
            with self._lock:
                if pending.uri in self._in_flight:
                    continue
                self._in_flight.add(pending.uri)
            self._pool.submit(self._work, pending)
        return new

    def run(self) -> None:
        """Poll every `poll_seconds` until `stopping` is set; then let workers wind down."""
        try:
            while not self.stopping.is_set():
                try:
                    self.poll_once()
                except exceptions.UnauthorizedError:
                    log.warning("the server no longer accepts the session; logging in again")
                    login_again(self.account.client, self.settings, self.state)
                except Exception:  # the network can fail; the loop must not
                    log.exception("polling notifications failed; trying again")
                self.stopping.wait(self.settings.poll_seconds)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _work(self, pending: PendingMention) -> None:
        try:
            self.handle(_Mention(pending))
            self.state.finish(pending.uri)
        except exceptions.ModelError:
            log.warning("ignored %s: not a readable post", pending.uri)
            self.state.finish(pending.uri)
        except InterruptedError:
            log.info("left %s pending for the next start", pending.uri)
        except Exception:
            with self._lock:
                failures = self._failures.get(pending.uri, 0) + 1
                self._failures[pending.uri] = failures
            log.exception("answering %s failed (attempt %d)", pending.uri, failures)
            if failures >= MAX_ATTEMPTS:
                self.state.finish(pending.uri)
        finally:
            with self._lock:
                self._in_flight.discard(pending.uri)

    # --- answering one mention ----------------------------------------------------------------

    def _reply(self, mention: _Mention, kind: str, head: str, body: str = "") -> None:
        post_reply_once(
            self.account.client,
            self.account.throttle,
            self.account.did,
            mention.ref,
            mention.record.reply,
            kind,
            compose(head, body),
        )

    def handle(self, mention: _Mention) -> None:
        """Answer one mention (if its author is within the rate limit)."""
        if self.stopping.is_set():
            raise InterruptedError("the bot is stopping; the mention stays pending")
        verdict = self.limiter.check(mention.pending.author)
        if verdict is Verdict.IGNORE:
            return
        if verdict is Verdict.REFUSE:
            retry = self.limiter.retry_in(mention.pending.author)
            self._reply(mention, ANSWER, messages.rate_limited(retry))
            return
        command = parse_command(mention.record.text, mention.record.facets, self.account.did)
        if command.kind == "help":
            self._reply(mention, ANSWER, messages.HELP)
        elif command.kind == "unknown":
            self._reply(mention, ANSWER, messages.usage(command.problem))
        elif command.kind == "describe":
            self._describe(mention, command)
        elif command.kind == "validate":
            self._validate(mention, command)
        else:
            self._run(mention, command)

    def _describe(self, mention: _Mention, command: Command) -> None:
        try:
            job = self.ledger.get(command.argument)
        except JobNotFound:
            self._reply(mention, ANSWER, messages.unknown_job(command.argument))
            return
        self._reply(mention, ANSWER, *messages.describe(job))

    def _compile(self, mention: _Mention, url: str) -> CompiledSpec | None:
        """Fetch and compile, replying with the reason when either fails."""
        try:
            fetched = fetch(url, self.fetch_policy)
        except FetchError as exc:
            self._reply(mention, ANSWER, messages.fetch_refused(str(exc)))
            return None
        try:
            return compile_document(fetched.content, source=fetched.url)
        except SpecError as exc:
            self._reply(mention, ANSWER, messages.invalid_spec(exc))
            return None

    def _validate(self, mention: _Mention, command: Command) -> None:
        compiled = self._compile(mention, command.argument)
        if compiled is not None:
            warnings = len(compiled.report.warnings)
            self._reply(mention, ANSWER, messages.valid_spec(compiled.job_cid, warnings))

    def _submitted(self, uri: str) -> str | None:
        """The job already submitted for this post (a restart mid-job), if any."""
        page = self.ledger.list_jobs(source_ref=uri, limit=1)
        return page.items[0].id if page.items else None

    def _run(self, mention: _Mention, command: Command) -> None:
        job_id = self._submitted(mention.pending.uri)
        if job_id is None:
            compiled = self._compile(mention, command.argument)
            if compiled is None:
                return
            source = Source(
                adapter="bluesky", actor=mention.pending.author, ref=mention.pending.uri
            )
            try:
                job_id = self.ledger.submit(
                    compiled, source=source, idempotency_key=mention.pending.uri
                ).job_id
            except LedgerError as exc:
                self._reply(mention, ANSWER, messages.submit_refused(str(exc)))
                return
        job = self._wait(job_id, self.settings.wait_seconds)
        if not job.terminal:
            self._reply(mention, FOLLOW_UP, messages.follow_up(job, self.settings.wait_seconds))
            job = self._wait(job_id, None)
        self._reply(mention, ANSWER, *messages.outcome(job))

    def _wait(self, job_id: str, seconds: float | None) -> JobView:
        """The job once it ends or `seconds` pass (None: no limit), checking for a stop each
        second; a stop leaves the mention pending for the next start."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            left = 1.0 if deadline is None else min(deadline - time.monotonic(), 1.0)
            job = self.ledger.wait(job_id, timeout=max(left, 0.0))
            if job.terminal or (deadline is not None and time.monotonic() >= deadline):
                return job
            if self.stopping.is_set():
                raise InterruptedError("the bot is stopping; the job is answered on restart")
