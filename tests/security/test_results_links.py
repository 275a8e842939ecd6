"""Results are data, never links: whoever reads a task's result folder gets its regular
files and directories, never a host file a link points at, never a copy without end.

Links come two ways: made by the task itself (a host task's `ln -s`, a python.wasm task's
`os.symlink`), and planted in a completed execution's folder (what an older klippfisk or a
writable localDirectory could leave): every reader must hold on its own, whatever the
executor did.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from websockets.sync.client import connect

from klippfisk.adapters.cli import main
from klippfisk.engine import JobView, Ledger
from klippfisk.engine.executors.local.python_wasm import find_python_wasm
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.results import execution_results_dir
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import ExecutorSettings, Settings
from tests.integration.http_server import ADMIN, JOBS, serve

HOST_LINKS = """
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: ubuntu:24.04
        Entrypoint: [/bin/sh, -c]
        Parameters:
          - |
            echo data > /outputs/real; mkdir /outputs/d
            ln -s /etc/shadow /outputs/shadow; ln -s /etc /outputs/etc
            ln -s ../../.. /outputs/up; ln -s . /outputs/d/loop
            ln -s b /outputs/a; ln -s a /outputs/b
    ResultPaths: [{Name: outputs, Path: /outputs}]
    Timeouts: {ExecutionTimeout: 30}
"""

WASM_LINKS = """
language: python
code: |
  import os
  open('/outputs/real', 'w').write('data\\n')
  os.mkdir('/outputs/d')
  for name, to in [('up', '../../..'), ('d/loop', '.'), ('a', 'b'), ('b', 'a')]:
      os.symlink(to, '/outputs/' + name)
"""

PLAIN = """
Type: batch
Tasks:
  - Name: main
    Engine: {Type: docker, Params: {Image: ubuntu:24.04, Entrypoint: [/bin/sh, -c],
             Parameters: ["echo data > /outputs/real; echo printed"]}}
    ResultPaths: [{Name: outputs, Path: /outputs}]
    Timeouts: {ExecutionTimeout: 30}
"""

# What a download of a linking task's results holds: its data, nothing a link led to.
DATA_ONLY = {"stdout", "stderr", "exitCode", "outputs", "outputs/real", "outputs/d"}

no_python_wasm = pytest.mark.skipif(
    find_python_wasm(ExecutorSettings()) is None, reason="needs python.wasm (python-wasm extra)"
)


def tree(root: Path) -> set[str]:
    """Every path below `root`; fails on anything that is not a regular file or directory."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            mode = os.lstat(path).st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), f"{path} is not data"
            found.add(str(path.relative_to(root)))
    return found


def folder_of(settings: Settings, view: JobView) -> Path:
    execution = view.executions[-1]
    return execution_results_dir(settings, view.id, execution.id)


def job_get(job_id: str, target: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`klippfisk job get` as a user runs it; its exit code and what it said on stderr."""
    capsys.readouterr()
    code = main(["job", "get", job_id, "--output-dir", str(target)])
    return code, capsys.readouterr().err


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file no reader may hand out."""
    path = tmp_path / "host-secret"
    path.write_text("the operator's secret\n")
    return path


@pytest.mark.parametrize(
    "document",
    [HOST_LINKS, pytest.param(WASM_LINKS, marks=[no_python_wasm, pytest.mark.slow])],
    ids=["host-task", "wasm-task"],
)
def test_job_get_copies_only_the_data_of_a_task_that_made_links(
    document, run_job, tmp_path, capsys
):
    view = run_job(document)
    assert view.executions[-1].exit_code == 0, view.executions[-1].stderr

    code, err = job_get(view.id, tmp_path / "got", capsys)

    assert code == 0, err
    assert tree(tmp_path / "got") == DATA_ONLY
    assert (tmp_path / "got" / "outputs" / "real").read_text() == "data\n"


def plant_links(folder: Path, secret: Path) -> None:
    """Links of every kind in a completed execution's result folder."""
    outputs = folder / "outputs"
    (outputs / "d").mkdir()
    (outputs / "secret").symlink_to(secret)  # absolute, to a file
    (outputs / "host").symlink_to(secret.parent)  # absolute, to a directory
    (outputs / "up").symlink_to("../../..")  # relative: every job's results
    (outputs / "d" / "loop").symlink_to(".")
    (outputs / "a").symlink_to("b")
    (outputs / "b").symlink_to("a")
    os.mkfifo(outputs / "fifo")  # a reader that opens it waits for ever


def test_job_get_names_every_link_it_left_out(run_job, settings, secret, tmp_path, capsys):
    view = run_job(PLAIN)
    plant_links(folder_of(settings, view), secret)

    code, err = job_get(view.id, tmp_path / "got", capsys)

    assert code == 0, err
    assert tree(tmp_path / "got") == DATA_ONLY
    assert f"left out outputs/secret: a symbolic link to {secret}, not followed" in err
    for name in ("host", "up", "d/loop", "a", "b"):
        assert f"left out outputs/{name}: a symbolic link to " in err
    assert "left out outputs/fifo: a fifo, not read" in err


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [("MAX_FILES", "3", "more than 3 entries"), ("MAX_BYTES", "10", "more than 10 bytes")],
)
def test_job_get_stops_at_the_bounds_and_says_so(
    setting, value, says, run_job, tmp_path, capsys, monkeypatch
):
    view = run_job(PLAIN)
    monkeypatch.setenv(f"KLIPPFISK_RESULTS__{setting}", value)

    code, err = job_get(view.id, tmp_path / "got", capsys)

    assert code == 0, err
    assert f"the results hold {says}" in err and f"KLIPPFISK_RESULTS__{setting}" in err
    files = [p for p in (tmp_path / "got").rglob("*") if p.is_file()]
    assert len(files) <= 3 and sum(p.stat().st_size for p in files) <= 10


def test_the_result_cache_shares_no_link(ledger, settings, submit, secret):
    """A cache hit gives the new execution a folder of its own: links in the cached one are
    not recreated there (a reader of the new folder would follow them), and results that
    cannot be shared whole are not reused: the task runs again."""
    cached = Runner(ledger, default_registry(settings), settings, use_cache=True)
    first = cached.run_job(submit(PLAIN))
    plant_links(folder_of(settings, first), secret)

    second = cached.run_job(submit(PLAIN))

    assert tree(folder_of(settings, second)) == DATA_ONLY - {"outputs/d"}
    assert (folder_of(settings, second) / "outputs" / "real").read_text() == "data\n"
    assert not any("result cache hit" in note for note in second.executions[-1].notes)


def replace_with_link(path: Path, to: Path) -> None:
    path.unlink()
    path.symlink_to(to)


def test_job_logs_never_prints_what_a_link_in_place_of_stdout_points_at(
    run_job, settings, secret, capsys
):
    view = run_job(PLAIN)
    replace_with_link(folder_of(settings, view) / "stdout", secret)
    capsys.readouterr()

    code = main(["job", "logs", view.id])

    out = capsys.readouterr().out
    assert code == 0
    assert "secret" not in out
    assert out == "printed\n"  # the ledger's record of what the task printed


def test_the_http_logs_never_send_what_a_link_in_place_of_stdout_points_at(
    run_job, settings, ledger: Ledger, secret
):
    view = run_job(PLAIN)
    replace_with_link(folder_of(settings, view) / "stdout", secret)

    for api in serve():
        url = api.url.replace("http://", "ws://") + f"{JOBS}/{view.id}/logs"
        with connect(url, additional_headers={"Authorization": f"Bearer {ADMIN}"}) as socket:
            lines = [json.loads(message)["value"]["Line"] for message in socket]

    assert lines == ["printed\n"]


def test_job_get_leaves_out_folders_nested_past_the_depth_it_walks(
    run_job, settings, tmp_path, capsys
):
    """Each level of the walk holds a descriptor open: a task nesting folders thousands
    deep must not exhaust them (nor the reader's stack)."""
    view = run_job(PLAIN)
    deep = folder_of(settings, view) / "outputs" / Path(*["d"] * 70)
    deep.mkdir(parents=True)

    code, err = job_get(view.id, tmp_path / "got", capsys)

    assert code == 0, err
    assert "nested deeper than 64 directories" in err
    assert (tmp_path / "got" / "outputs" / "real").read_text() == "data\n"
