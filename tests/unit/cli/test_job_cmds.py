"""`klippfisk job list|describe|history|executions|stop` over a real ledger."""

from __future__ import annotations

import argparse
import json

import pytest

from klippfisk.adapters.cli import main
from klippfisk.adapters.cli.job_cmds import job_group
from klippfisk.engine import Ledger
from klippfisk.engine.settings import Settings
from klippfisk.spec.address import cid_of
from klippfisk.spec.compiled import CompiledSpec, Report


@pytest.fixture
def jobs() -> dict[str, str]:
    """Three jobs in the test's own ledger: one completed, one running, one pending."""
    ids = {}
    with Ledger.open(Settings()) as ledger:
        for name in ("done", "busy", "idle"):
            job = {"Name": name, "Type": "batch", "Tasks": [{"Engine": {"Type": "wasm"}}]}
            ids[name] = ledger.submit(
                CompiledSpec(job, cid_of(job), {}, Report("v1", "k", "1"))
            ).job_id
        for name in ("done", "busy"):
            execution_id = ledger.create_execution(ids[name], node="node-7")
            ledger.start_execution(ids[name], execution_id)
        finished = ledger.get(ids["done"]).executions[0].id
        ledger.complete_execution(ids["done"], finished, exit_code=0, stdout="the answer\n")
    return ids


def test_list_shows_bacalhau_columns_newest_first(jobs, capsys: pytest.CaptureFixture[str]):
    assert main(["job", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CREATED", "ID", "NAME", "ENGINE", "TYPE", "STATE"]
    assert [line.split()[3] for line in lines[1:]] == ["idle", "busy", "done"]
    assert lines[1].split()[2] == jobs["idle"][:10]
    assert lines[3].split()[-1] == "Completed"


def test_list_filters_pages_and_prints_json(jobs, capsys):
    assert main(["job", "list", "--state", "Running", "--output", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [j["ID"] for j in listed["Items"]] == [jobs["busy"]]
    assert listed["Items"][0]["State"]["StateType"] == "Running"
    assert main(["job", "list", "--limit", "2"]) == 0
    assert "klippfisk job list --next-token" in capsys.readouterr().out


def test_describe_by_name_shows_header_history_executions_and_output(jobs, capsys):
    assert main(["job", "describe", "done"]) == 0
    out = capsys.readouterr().out
    assert f"ID        = {jobs['done']}" in out and "State     = Completed" in out
    for section in ("Summary", "Job History", "Executions", "Execution History"):
        assert f"\n{section}\n" in out
    assert "node-7" in out and "the answer" in out


def test_describe_as_json_carries_job_executions_and_history(jobs, capsys):
    assert main(["job", "describe", jobs["busy"][:10], "--output", "json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["Job"]["ID"] == jobs["busy"]
    assert described["Executions"][0]["ComputeState"]["StateType"] == 6
    assert [h["SeqNum"] for h in described["History"]] == [1, 2, 3, 4]
    assert described["History"][-1]["JobState"] == {"Previous": "Pending", "New": "Running"}


def test_history_lists_time_level_version_exec_topic_event(jobs, capsys):
    assert main(["job", "history", "done", "--event-type", "execution"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TIME", "LEVEL", "VERSION", "EXEC.", "ID", "TOPIC", "EVENT"]
    assert len(lines) == 4 and all(" Execution " in line for line in lines[1:])


def test_executions_lists_each_attempt(jobs, capsys):
    assert main(["job", "executions", "done"]) == 0
    (header, row) = capsys.readouterr().out.splitlines()
    assert "EXIT CODE" in header and "Completed" in row and row.rstrip().endswith("0")


def test_stop_stops_a_running_job_and_refuses_a_finished_one(jobs, capsys):
    assert main(["job", "stop", "busy"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["job", "stop", "done"]) == 1
    err = capsys.readouterr().err
    assert "Cannot stop" in err and "Completed" in err and "Traceback" not in err


def test_an_unknown_job_is_a_message_and_exit_1(jobs, capsys):
    assert main(["job", "describe", "no-such-job"]) == 1
    assert "klippfisk job list" in capsys.readouterr().err


def test_an_unusable_store_is_a_message_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("KLIPPFISK_LEDGER__STORE", "mongo")
    assert main(["job", "list"]) == 2
    assert "KLIPPFISK_LEDGER__STORE to sqlite or postgres" in capsys.readouterr().err


def test_modules_share_one_job_group():
    parser = argparse.ArgumentParser()
    groups = parser.add_subparsers(dest="group")
    first, second = job_group(groups), job_group(groups)
    first.add_parser("list")
    second.add_parser("run")
    assert first is second
    assert parser.parse_args(["job", "run"]).job_command == "run"


def test_a_name_in_two_namespaces_needs_the_namespace_flag(capsys):
    ids = {}
    with Ledger.open(Settings()) as ledger:
        for namespace in ("team-a", "team-b"):
            job = {"Name": "report", "Namespace": namespace, "Type": "batch", "Tasks": []}
            compiled = CompiledSpec(job, cid_of(job), {}, Report("v1", "k", "1"))
            ids[namespace] = ledger.submit(compiled).job_id
    assert main(["job", "describe", "report"]) == 1
    assert "several namespaces (team-a, team-b)" in capsys.readouterr().err
    assert main(["job", "describe", "report", "--namespace", "team-b", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["Job"]["ID"] == ids["team-b"]
    assert main(["job", "list", "--namespace", "team-a", "-o", "json"]) == 0
    assert [j["ID"] for j in json.loads(capsys.readouterr().out)["Items"]] == [ids["team-a"]]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--limit", "-5"], "--limit"),
        (["--limit", "many"], "--limit"),
        (["--state", "Sleeping"], "--state"),
    ],
    ids=["negative-limit", "word-limit", "unknown-state"],
)
def test_a_bad_list_option_is_a_usage_error_exit_2(argv, named, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["job", "list", *argv])

    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_a_page_token_the_ledger_never_gave_is_a_usage_error_exit_2(jobs, capsys):
    assert main(["job", "list", "--next-token", "garbage"]) == 2

    err = capsys.readouterr().err
    assert "'garbage' is not one this ledger gave out" in err and "Traceback" not in err
