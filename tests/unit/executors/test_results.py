"""The results directory: Bacalhau's layout, and the 2 KiB RunOutput rule."""

from __future__ import annotations

import json

import pytest

from klippfisk.engine.executors.base import RUN_OUTPUT_LIMIT, ExecutionOutcome
from klippfisk.engine.results import (
    ResultCache,
    ResultsDir,
    cacheable,
    execution_results_dir,
    summarise,
)
from klippfisk.engine.settings import ExecutorSettings, Settings


def test_layout_is_per_job_and_execution_under_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)

    path = execution_results_dir(settings, "j-1", "e-2")

    assert path == tmp_path / "results" / "j-1" / "e-2"
    elsewhere = Settings(data_dir=tmp_path, executor=ExecutorSettings(results_dir=tmp_path / "r"))
    assert execution_results_dir(elsewhere, "j-1", "e-2") == tmp_path / "r" / "j-1" / "e-2"


def test_summary_keeps_the_head_of_each_stream_and_flags_the_cut(tmp_path):
    results = ResultsDir(tmp_path / "e")
    results.prepare(["outputs"])
    results.stdout.write_text("é" * RUN_OUTPUT_LIMIT)  # 2 bytes each: cut mid-character
    results.stderr.write_text("short")

    outcome = summarise(results, exit_code=4)

    assert outcome.output.stdout_truncated is True
    assert len(outcome.output.stdout.encode("utf-8", errors="replace")) <= RUN_OUTPUT_LIMIT + 2
    assert outcome.output.stderr == "short"
    assert outcome.output.stderr_truncated is False
    assert results.exit_code.read_text() == "4\n"
    assert (results.path / "outputs").is_dir()
    assert outcome.output.published_result == {
        "Type": "local",
        "Params": {"URL": results.path.resolve().as_uri()},
    }


def test_failed_runs_publish_nothing_and_write_no_exit_code(tmp_path):
    results = ResultsDir(tmp_path / "e")
    results.prepare([])

    outcome = summarise(results, error="boom")

    assert outcome.output is None
    assert not results.exit_code.exists()


def test_result_names_cannot_escape_the_results_directory(run_task, docker_task):
    task = docker_task("ubuntu", "true", results=[{"Name": "../../escape", "Path": "/outputs"}])

    run = run_task(task)

    assert "cannot be a directory name" in run.outcome.error
    assert not (run.results.parent.parent / "escape").exists()


def _completed(results: ResultsDir) -> ExecutionOutcome:
    results.prepare([])
    results.stdout.write_text("namespace a's answer")
    return summarise(results, exit_code=0)


def test_a_cached_result_answers_only_in_its_own_namespace(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    cache.put("a", "bagaaiera-task", "e-1", _completed(ResultsDir(tmp_path / "e-1")))

    cached = cache.get("a", "bagaaiera-task")
    assert cached is not None
    assert (cached.execution_id, cached.output.stdout) == ("e-1", "namespace a's answer")
    assert cache.get("b", "bagaaiera-task") is None


def test_cache_entries_keep_the_layout_earlier_caches_were_written_in(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    cache.put("a", "bagaaiera-task", "e-1", _completed(ResultsDir(tmp_path / "e-1")))

    [entry] = (tmp_path / "cache").glob("*.json")
    assert list(json.loads(entry.read_text())) == [
        "execution_id",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "published_result",
    ]


def _task(*kinds: str) -> dict:
    sources = [{"Target": f"/in{n}", "Source": {"Type": k}} for n, k in enumerate(kinds)]
    return {"Name": "main", "InputSources": sources}


@pytest.mark.parametrize("kinds", [(), ("inline",), ("ipfs", "InLine")])
def test_tasks_whose_inputs_the_task_cid_covers_are_cacheable(kinds):
    assert cacheable(_task(*kinds)) is True


@pytest.mark.parametrize(
    "kinds", [("urlDownload",), ("localDirectory",), ("local",), ("s3",), ("inline", "urldownload")]
)
def test_tasks_reading_content_the_task_cid_does_not_cover_are_not_cached(kinds):
    assert cacheable(_task(*kinds)) is False
