"""The Bacalhau v1 wire rules both HTTP sides rely on (engine.wire)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from klippfisk.engine import ExecutionState, ExecutionView, JobState
from klippfisk.engine.run_output import RunOutput
from klippfisk.engine.wire import (
    EXECUTION_STATES,
    APIError,
    GetJobResponse,
    PagingToken,
    WireError,
    WireExecution,
    WireHistory,
    WireJob,
    error_body,
    execution_state_name,
    execution_state_number,
    from_nanos,
    list_body,
    parse_rfc3339,
    rfc3339,
    to_nanos,
    uses_pre_v15_execution_states,
)


def job_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "ID": "j-1",
        "Name": "hello",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {},
        "Labels": {},
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker"}}],
        "State": {"StateType": "Completed"},
        "Version": 1,
        "Revision": 3,
        "CreateTime": 1_700_000_000_000_000_000,
        "ModifyTime": 1_700_000_001_000_000_000,
    }
    body.update(overrides)
    return body


def test_completed_is_7_before_v15_and_9_from_v15() -> None:
    assert execution_state_name(7, pre_v15=True) == "Completed"
    assert execution_state_name(7) == "Publishing"
    assert execution_state_name(9) == "Completed"
    assert execution_state_name(9, pre_v15=True) == "Cancelled"
    assert execution_state_number("Completed") == 9
    assert execution_state_number("Failed") == 10


def test_unknown_execution_state_names_and_numbers_are_reported() -> None:
    assert execution_state_name(42) == "Unknown(42)"
    with pytest.raises(WireError, match="unknown execution state"):
        execution_state_number("Exploded")


@pytest.mark.parametrize(
    ("version", "pre"),
    [
        ("v1.4.2", True),
        ("v1.3.0-rc1", True),
        ("1.0.0", True),
        ("v1.5.0", False),
        ("v1.7.3+dirty", False),
        ("v2.0.0", False),
        ("", False),
        ("devel", False),
    ],
)
def test_numbering_follows_the_server_version(version: str, pre: bool) -> None:
    assert uses_pre_v15_execution_states(version) is pre


def test_times_go_out_as_rfc3339_utc_with_nanoseconds() -> None:
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    plus_two = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2024-01-02T03:04:05Z"


def test_a_naive_time_cannot_go_on_the_wire() -> None:
    with pytest.raises(WireError, match="zone"):
        rfc3339(datetime(2024, 1, 1))


def test_go_times_with_nanoseconds_and_offsets_are_read() -> None:
    moment = parse_rfc3339("2024-01-02T03:04:05.123456789+01:00")
    assert moment.astimezone(UTC) == datetime(2024, 1, 2, 2, 4, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2024-01-02", "2024-01-02T03:04:05", "yesterday", ""])
def test_times_without_zone_or_clock_are_refused(text: str) -> None:
    with pytest.raises(WireError, match="RFC 3339|zone"):
        parse_rfc3339(text)


def test_nanoseconds_round_trip_through_datetimes() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert from_nanos(to_nanos(moment)) == moment
    assert to_nanos(moment) == 1_714_979_289_123_456_000


def test_paging_tokens_match_go_encoding_and_round_trip() -> None:
    token = PagingToken(sort_by="created_at", reverse=True, limit=10, offset=20)
    # base64url without padding of "created_at:Y:10:20", as models.PagingToken writes it
    assert token.encode() == "Y3JlYXRlZF9hdDpZOjEwOjIw"
    assert PagingToken.decode(token.encode()) == token


@pytest.mark.parametrize("token", ["%%%", "bm9jb2xvbnM", "YTpiOmM6ZA"])
def test_bad_paging_tokens_are_a_clear_error(token: str) -> None:
    with pytest.raises(WireError, match="NextToken of the previous page"):
        PagingToken.decode(token)


def test_error_and_list_bodies_have_exactly_the_go_keys() -> None:
    body = error_body(404, "job not found", code="NotFound", request_id="r1", hint="list jobs")
    assert set(body) == {"Status", "Message", "RequestID", "Code", "Component", "Hint"}
    assert APIError.model_validate(body).Status == 404
    assert list_body([]) == {"Items": [], "NextToken": ""}


def test_a_job_with_state_as_string_and_nanosecond_times_is_accepted() -> None:
    job = WireJob.model_validate(job_body())
    assert job.State.StateType == "Completed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"State": {"StateType": 4}},  # the OpenAPI's integer enum: wrong on the wire
        {"CreateTime": "2024-01-01T00:00:00Z"},
        {"ModifyTime": 1.5},
        {"Version": "1"},
        {"State": {"StateType": "Done"}},
    ],
)
def test_jobs_breaking_go_typing_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WireJob.model_validate(job_body(**overrides))


def test_execution_states_must_be_integers_and_stderr_is_lower_case() -> None:
    body = {
        "ID": "e-1",
        "JobID": "j-1",
        "DesiredState": {"StateType": 2},
        "ComputeState": {"StateType": 9},
        "RunOutput": {"Stdout": "hi\n", "stderr": "oops\n", "ExitCode": 3},
        "CreateTime": 1,
        "ModifyTime": 2,
    }
    execution = WireExecution.model_validate(body)
    assert execution.RunOutput is not None
    assert execution.RunOutput.Stderr == "oops\n"
    assert "stderr" in execution.RunOutput.model_dump(by_alias=True)
    with pytest.raises(ValidationError):
        WireExecution.model_validate({**body, "ComputeState": {"StateType": "Completed"}})


def test_history_type_is_a_string_and_time_needs_a_zone() -> None:
    entry = {
        "SeqNum": 1,
        "Type": "JobLevel",
        "JobID": "j-1",
        "Time": "2024-01-02T03:04:05Z",
        "JobState": {"Previous": "Pending", "New": "Queued"},
        "Event": {"Message": "queued", "Topic": "Queueing", "Timestamp": "2024-01-02T03:04:05Z"},
    }
    assert WireHistory.model_validate(entry).JobState is not None
    with pytest.raises(ValidationError):
        WireHistory.model_validate({**entry, "Type": 1})
    with pytest.raises(ValidationError):
        WireHistory.model_validate({**entry, "Time": "2024-01-02T03:04:05"})


def test_get_job_response_carries_optional_history_and_executions() -> None:
    parsed = GetJobResponse.model_validate(
        {"Job": job_body(), "History": {"Items": [], "NextToken": ""}}
    )
    assert parsed.History is not None
    assert parsed.Executions is None


def test_execution_numbers_match_bacalhaus_own_openapi() -> None:
    """The numbering is right in Bacalhau's swagger even though its enum *types* are not."""
    data = Path(__file__).parents[2] / "data" / "bacalhau-swagger-v1.5.2.json"
    definitions = json.loads(data.read_text())["definitions"]
    names = definitions["models.ExecutionStateType"]["x-enum-varnames"]
    assert {i: n.removeprefix("ExecutionState") for i, n in enumerate(names)} == EXECUTION_STATES
    # ...and the swagger's integer job states are exactly what the Go server does not send.
    assert definitions["models.JobStateType"]["type"] == "integer"
    jobs = definitions["models.JobStateType"]["x-enum-varnames"]
    assert [n.removeprefix("JobStateType") for n in jobs[1:]] == [str(s) for s in JobState]


def execution_view(output: RunOutput | None, error: str = "") -> ExecutionView:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    state = ExecutionState.COMPLETED if output else ExecutionState.FAILED
    return ExecutionView(
        id="e-1",
        job_id="j-1",
        job_version=1,
        executor="local",
        node="node-1",
        state=state,
        message="done",
        created_at=moment,
        modified_at=moment,
        notes=[],
        output=output,
        error=error,
    )


def test_a_run_output_reads_back_from_what_our_server_writes() -> None:
    output = RunOutput(
        exit_code=3,
        stdout="héllo\n",
        stderr="oops\n",
        stdout_truncated=True,
        published_result={"Type": "local", "Params": {"URL": "file:///tmp/r"}},
    )
    sent = execution_view(output).to_wire("team-a").model_dump_json(by_alias=True)

    received = WireExecution.model_validate_json(sent)

    assert received.run_output() == output
    assert '"stderr":"oops\\n"' in sent  # Go's lower-case spelling
    assert received.CreateTime == to_nanos(datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))


def test_an_execution_without_output_sends_zeros_and_its_error() -> None:
    sent = execution_view(None, error="it broke").to_wire()

    assert sent.RunOutput is not None
    assert (sent.RunOutput.ExitCode, sent.RunOutput.ErrorMsg) == (0, "it broke")
    assert (sent.DesiredState.StateType, sent.ComputeState.StateType) == (2, 10)
    assert sent.PublishedResult is None


def test_execution_state_names_are_the_domain_states_labels() -> None:
    assert EXECUTION_STATES[int(ExecutionState.ASK_FOR_BID_ACCEPTED)] == "AskForBidAccepted"
    assert execution_state_name(ExecutionState.CANCELLED) == "Cancelled"
