"""Random command sequences against a real (SQLite) ledger.

Whatever order commands come in: a job only ever moves along the transition table, a refused
command writes nothing, and replaying the stored events rebuilds exactly the job the ledger
holds in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from klippfisk.engine import JobState, JobView, Ledger, LedgerError
from klippfisk.engine.job import JOB_RULES
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.compiled import CompiledSpec

# The state each accepted command must leave the job in (None: unchanged or depends).
_AFTER = {
    "queue": JobState.QUEUED,
    "reclaim": JobState.QUEUED,
    "start_execution": JobState.RUNNING,
    "stop": JobState.STOPPED,
    "time_out": JobState.FAILED,
    "resubmit": JobState.PENDING,
}


class LedgerMachine(RuleBasedStateMachine):
    make_spec: Callable[..., CompiledSpec]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name)
        settings_ = Settings(data_dir=path, ledger=LedgerSettings(path=path / "l.db"))
        self.ledger = Ledger.open(settings_)
        self.executions: list[str] = ["e-never-created"]
        self.commands = 0

    def teardown(self) -> None:
        self.ledger.close()
        self.tmp.cleanup()

    @initialize()
    def submit(self) -> None:
        self.job_id = self.ledger.submit(self.make_spec("machine")).job_id

    def _attempt(self, command: str, call: object) -> None:
        before = self.ledger.get(self.job_id)
        try:
            result = call()  # type: ignore[operator]
        except LedgerError:
            after = self.ledger.get(self.job_id)
            assert after == before, f"refused {command} changed the job"
            assert self.ledger.last_modified(self.job_id) == before.revision
            return
        after = self.ledger.get(self.job_id)
        assert before.state in JOB_RULES[command], f"{command} accepted from {before.state}"
        expected = _AFTER.get(command)
        assert expected is None or after.state is expected
        if command == "create_execution":
            self.executions.append(str(result))

    @rule()
    def queue(self) -> None:
        self._attempt("queue", lambda: self.ledger.queue(self.job_id))

    @rule(
        dead_owner=st.sampled_from(["runner", "successor", "someone"]),
        actor=st.sampled_from(["successor", "other-successor"]),
    )
    def reclaim(self, dead_owner: str, actor: str) -> None:
        before = self.ledger.get(self.job_id)
        self._attempt(
            "reclaim",
            lambda: self.ledger.reclaim(
                self.job_id, dead_owner=dead_owner, actor=actor, reason="resumed"
            ),
        )
        after = self.ledger.get(self.job_id)
        if after.revision != before.revision:  # accepted: only a dead claim nothing ran of
            assert before.queued_by == dead_owner and after.queued_by == actor
            assert not [e for e in before.executions if e.job_version == before.version]
            assert after.executions == before.executions

    @rule()
    def create_execution(self) -> None:
        self._attempt("create_execution", lambda: self.ledger.create_execution(self.job_id))

    @rule(pick=st.integers(0, 9))
    def start_execution(self, pick: int) -> None:
        execution_id = self.executions[pick % len(self.executions)]
        self._attempt(
            "start_execution", lambda: self.ledger.start_execution(self.job_id, execution_id)
        )

    @rule(pick=st.integers(0, 9), exit_code=st.integers(0, 255))
    def complete_execution(self, pick: int, exit_code: int) -> None:
        execution_id = self.executions[pick % len(self.executions)]
        self._attempt(
            "complete_execution",
            lambda: self.ledger.complete_execution(self.job_id, execution_id, exit_code=exit_code),
        )

    @rule(pick=st.integers(0, 9), retryable=st.booleans())
    def fail_execution(self, pick: int, retryable: bool) -> None:
        execution_id = self.executions[pick % len(self.executions)]
        self._attempt(
            "fail_execution",
            lambda: self.ledger.fail_execution(
                self.job_id, execution_id, error="boom", retryable=retryable
            ),
        )

    @rule(pick=st.integers(0, 9))
    def cancel_execution(self, pick: int) -> None:
        execution_id = self.executions[pick % len(self.executions)]
        self._attempt(
            "cancel_execution",
            lambda: self.ledger.cancel_execution(self.job_id, execution_id, reason="enough"),
        )

    @rule()
    def stop(self) -> None:
        self._attempt("stop", lambda: self.ledger.stop(self.job_id))

    @rule(kind=st.sampled_from(["execution", "queue", "total"]))
    def time_out(self, kind: str) -> None:
        self._attempt(
            "time_out", lambda: self.ledger.time_out(self.job_id, kind=kind, limit_seconds=5)
        )

    @rule(changed=st.booleans())
    def resubmit(self, changed: bool) -> None:
        self.commands += 1
        spec = self.make_spec("machine", command=f"echo {self.commands}" if changed else "echo hi")
        self._attempt("resubmit", lambda: self.ledger.submit(spec, force=True))

    @invariant()
    def replaying_the_store_rebuilds_the_same_job(self) -> None:
        if not hasattr(self, "job_id"):
            return
        held = self.ledger.get(self.job_id)
        replayed = JobView.of(self.ledger.repository.get(self.job_id))
        assert held == replayed
        assert held.state in set(JobState)

    @invariant()
    def the_chain_verifies(self) -> None:
        assert self.ledger.verify().ok


def test_random_command_sequences_keep_to_the_table(
    make_spec: Callable[..., CompiledSpec],
) -> None:
    LedgerMachine.make_spec = staticmethod(make_spec)  # type: ignore[assignment]
    run_state_machine_as_test(LedgerMachine, settings=settings(stateful_step_count=15))
