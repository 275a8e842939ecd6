"""The bot's loop: take mentions in, answer each one, exactly once, in its thread.

Every poll takes new mentions into the state file (intake.py) and hands each unfinished one
to a worker pool whose size is the concurrency cap. A worker applies the author's rate
limit, parses the command and answers it. `job run` fetches the file through the fetch
guard, compiles it, holds it to the bot's policy (policy.py: namespace, no network, caps),
and submits it to the ledger with the post's URI as idempotency key and the post as the
job's source (adapter `bluesky`, actor = the author's DID, ref = the URI); then waits. A job
done within `wait_seconds` gets one reply with its ids and stdout; a slower one gets a
follow-up reply at once and is handed to the watcher (watcher.py), which queues the final
reply when it ends, so slow jobs hold no worker. A mention is marked done only after its
final reply, so a restart resumes it: the submit returns the same job and the replies' fixed
record keys keep them from being posted twice.

An answer that fails (the server refuses the post, or is down) is tried again after a pause
that doubles each time, counted in the state file; after `MAX_ATTEMPTS` the bot posts a short
fallback instead, and a `job run` is never finished without some reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from atproto import Client, exceptions, models
from atproto_client.models.utils import get_or_create

from klippfisk.adapters.bluesky import messages
from klippfisk.adapters.bluesky.commands import Command, parse_command
from klippfisk.adapters.bluesky.fetch_guard import FetchError, FetchPolicy, fetch
from klippfisk.adapters.bluesky.intake import take_in
from klippfisk.adapters.bluesky.limits import AuthorLimiter, Verdict
from klippfisk.adapters.bluesky.policy import (
    BotLimits,
    PolicyRefused,
    admit,
    may_describe,
    may_read_output,
)
from klippfisk.adapters.bluesky.posting import post_reply_once
from klippfisk.adapters.bluesky.reply import compose
from klippfisk.adapters.bluesky.session import LoginDeferred, login_again
from klippfisk.adapters.bluesky.state import BotState, PendingMention
from klippfisk.adapters.bluesky.throttle import ServerThrottle
from klippfisk.adapters.bluesky.watcher import JobWatcher
from klippfisk.adapters.settings import BotSettings
from klippfisk.engine import JobNotFound, JobView, Ledger, LedgerError, Source
from klippfisk.spec import CompiledSpec, SpecError, compile_document

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
        self.limits = BotLimits.of(settings)
        self.stopping = stopping
        self._pool = ThreadPoolExecutor(settings.max_concurrent, thread_name_prefix="bot")
        self._watcher: JobWatcher[PendingMention] = JobWatcher(ledger, self._ended, stopping)
        self._in_flight: set[str] = set()
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
        for pending in self.state.pending(now=time.time()):
            with self._lock:
                if pending.uri in self._in_flight:
                    continue
                self._in_flight.add(pending.uri)
            self._pool.submit(self._work, pending, self.handle)
        return new

    def run(self) -> None:
        """Poll every `poll_seconds` until `stopping` is set; then let workers wind down."""
        self._watcher.start()
        try:
            while not self.stopping.is_set():
                try:
                    self.poll_once()
                except exceptions.UnauthorizedError:
                    log.warning("the server no longer accepts the session; logging in again")
                    self._log_in_again()
                except Exception:  # the network can fail; the loop must not
                    log.exception("polling notifications failed; trying again")
                self.stopping.wait(self.settings.poll_seconds)
        finally:
            self._watcher.join()
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _log_in_again(self) -> None:
        """A login that may work later (server unreachable, budget spent) waits for the next
        poll; only a refusal that time will not mend (bad credentials) stops the bot."""
        try:
            login_again(self.account.client, self.settings, self.state)
        except LoginDeferred as exc:
            log.warning("%s Still polling; the login is tried again later.", exc)

    def _work(self, pending: PendingMention, answer: Callable[[_Mention], bool]) -> None:
        """Run `answer` on one mention; finish the mention when it says the answer is done,
        and count a failure (with backoff) when it raises."""
        handed_over = False
        try:
            if answer(_Mention(pending)):
                self.state.finish(pending.uri)
            else:
                handed_over = True  # the watcher holds it; keep it out of the next poll
        except exceptions.ModelError:
            log.warning("ignored %s: not a readable post", pending.uri)
            self.state.finish(pending.uri)
        except InterruptedError:
            log.info("left %s pending for the next start", pending.uri)
        except Exception:
            self._failed(pending)
        finally:
            if not handed_over:
                with self._lock:
                    self._in_flight.discard(pending.uri)

    def _failed(self, pending: PendingMention) -> None:
        attempts = self.state.record_failure(
            pending.uri, time.time(), self.settings.retry_seconds, self.settings.retry_max_seconds
        )
        log.exception("answering %s failed (attempt %d)", pending.uri, attempts)
        if attempts < MAX_ATTEMPTS:
            return
        try:
            self._fall_back(_Mention(pending))
        except Exception:
            log.exception("the fallback reply to %s failed too; trying again later", pending.uri)
            return
        self.state.finish(pending.uri)

    def _fall_back(self, mention: _Mention) -> None:
        """The short last reply: a job run is never left without one."""
        command = parse_command(mention.record.text, mention.record.facets, self.account.did)
        if command.kind != "run":
            return
        job_id = self._submitted(mention.pending.uri)
        self._reply(mention, ANSWER, messages.fallback(job_id))

    def _ended(self, job: JobView, pending: PendingMention) -> None:
        """The watcher saw a job end: queue its final reply on the pool."""

        def final_reply(mention: _Mention) -> bool:
            self._reply(mention, ANSWER, *messages.outcome(job))
            return True

        self._pool.submit(self._work, pending, final_reply)

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

    def handle(self, mention: _Mention) -> bool:
        """Answer one mention (if its author is within the rate limit); False when a slow
        job was handed to the watcher and the final reply is still to come."""
        if self.stopping.is_set():
            raise InterruptedError("the bot is stopping; the mention stays pending")
        verdict = self.limiter.check(mention.pending.author)
        if verdict is Verdict.IGNORE:
            return True
        if verdict is Verdict.REFUSE:
            retry = self.limiter.retry_in(mention.pending.author)
            self._reply(mention, ANSWER, messages.rate_limited(retry))
            return True
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
            return self._run(mention, command)
        return True

    def _describe(self, mention: _Mention, command: Command) -> None:
        """Only the bot's own jobs exist here, and only their author sees their output."""
        try:
            job = self.ledger.get(command.argument, namespace=self.limits.namespace)
        except JobNotFound:
            job = None
        if job is None or not may_describe(job, self.limits.namespace):
            self._reply(mention, ANSWER, messages.unknown_job(command.argument))
            return
        shown = may_read_output(job, mention.pending.author)
        self._reply(mention, ANSWER, *messages.describe(job, show_output=shown))

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

    def _admitted(self, mention: _Mention, url: str) -> CompiledSpec | None:
        """The job as the bot will run it, or None after replying why not."""
        compiled = self._compile(mention, url)
        if compiled is None:
            return None
        try:
            return admit(compiled, self.limits)
        except PolicyRefused as exc:
            self._reply(mention, ANSWER, messages.policy_refused(str(exc)))
        except SpecError as exc:
            self._reply(mention, ANSWER, messages.invalid_spec(exc))
        return None

    def _run(self, mention: _Mention, command: Command) -> bool:
        job_id = self._submitted(mention.pending.uri)
        if job_id is None:
            compiled = self._admitted(mention, command.argument)
            if compiled is None:
                return True
            source = Source(
                adapter="bluesky", actor=mention.pending.author, ref=mention.pending.uri
            )
            try:
                job_id = self.ledger.submit(
                    compiled, source=source, idempotency_key=mention.pending.uri
                ).job_id
            except LedgerError as exc:
                self._reply(mention, ANSWER, messages.submit_refused(str(exc)))
                return True
        job = self._wait(job_id, self.settings.wait_seconds)
        if not job.terminal:
            self._reply(mention, FOLLOW_UP, messages.follow_up(job, self.settings.wait_seconds))
            self._watcher.watch(job_id, mention.pending)
            return False
        self._reply(mention, ANSWER, *messages.outcome(job))
        return True

    def _wait(self, job_id: str, seconds: float) -> JobView:
        """The job once it ends or `seconds` pass, checking for a stop each second; a stop
        leaves the mention pending for the next start."""
        deadline = time.monotonic() + seconds
        while True:
            left = min(deadline - time.monotonic(), 1.0)
            job = self.ledger.wait(job_id, timeout=max(left, 0.0))
            if job.terminal or time.monotonic() >= deadline:
                return job
            if self.stopping.is_set():
                raise InterruptedError("the bot is stopping; the job is answered on restart")
