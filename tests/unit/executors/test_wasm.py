"""The wasm engine: real modules in wasmtime, their output, limits and faults."""

from __future__ import annotations

import threading
from pathlib import Path

import wasmtime

from klippfisk.engine.executors.base import RUN_OUTPUT_LIMIT

SPIN = wasmtime.wat2wasm('(module (func (export "_start") (loop br 0)))')
TRAP = wasmtime.wat2wasm('(module (func (export "_start") unreachable))')
BIG_MEMORY = wasmtime.wat2wasm('(module (memory 64) (func (export "_start")))')  # 4 MiB


WASM_DIR = Path(__file__).parents[2] / "data" / "wasm"


def test_hello_prints_its_arguments_and_environment(run_task, wasm_task):
    run = run_task(wasm_task("hello", "a b", "c", env={"GREETING": "hej"}))

    assert run.outcome.error is None
    assert run.outcome.output.exit_code == 0
    assert run.outcome.output.stdout == "hello from wasm\narg 1: a b\narg 2: c\nGREETING=hej\n"
    assert run.hooks.calls == [("local", run.outcome.notes)]
    assert "no network" in run.outcome.notes[0]
    assert (run.results / "exitCode").read_text() == "0\n"
    assert (run.results / "stdout").read_text() == run.outcome.output.stdout


def test_non_zero_exit_completes_with_that_code(run_task, wasm_task):
    run = run_task(wasm_task("hello", "exit", "7"))

    assert run.outcome.error is None
    assert run.outcome.output.exit_code == 7
    assert run.outcome.output.stderr == "this goes to stderr\n"
    assert (run.results / "exitCode").read_text() == "7\n"


def test_long_output_is_cut_to_run_output_limit_but_kept_in_full(run_task, wasm_task):
    run = run_task(wasm_task("hello", "spam", "5000"))

    assert run.outcome.output.stdout == "x" * RUN_OUTPUT_LIMIT
    assert run.outcome.output.stdout_truncated is True
    assert run.outcome.output.stderr_truncated is False
    assert (run.results / "stdout").read_text() == "x" * 5000


def test_output_past_resources_disk_is_cut_and_the_cut_noted(run_task, wasm_task):
    task = wasm_task("hello", "spam", "1000000")
    task["Resources"]["Disk"] = "10000"

    run = run_task(task)

    assert run.outcome.error is None
    assert (run.results / "stdout").stat().st_size == 10_000
    assert "stdout output truncated at 10000 bytes" in " ".join(run.outcome.notes)


def test_output_cap_defaults_to_the_operator_setting(run_task, wasm_task):
    run = run_task(
        wasm_task("hello", "spam", "100000"), executor_settings={"max_output_bytes": 4096}
    )

    assert (run.results / "stdout").stat().st_size == 4096
    assert "stdout output truncated at 4096 bytes" in " ".join(run.outcome.notes)


def test_inputs_are_read_only_and_result_paths_writable(run_task, wasm_task, inline):
    task = wasm_task(
        "files",
        "/inputs/data.txt",
        "/outputs/copy.txt",
        inputs=[inline("/inputs/data.txt", b"payload\n")],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )
    run = run_task(task)

    assert run.outcome.output.exit_code == 0, run.outcome
    assert "input is read-only" in run.outcome.output.stdout
    assert (run.results / "outputs" / "copy.txt").read_bytes() == b"payload\n"


def test_memory_limit_makes_allocation_fail_inside_the_module(run_task, wasm_task):
    # files.wasm starts with 16 MiB of linear memory (its stack and data), so 24 MiB leaves
    # less than 8 MiB for malloc to hand out before memory.grow is refused.
    run = run_task(wasm_task("files", "alloc", memory="24Mi"))

    assert run.outcome.output.exit_code == 3
    allocated = int(run.outcome.output.stdout.split()[1])
    assert 0 < allocated < 8


def test_module_needing_more_memory_than_allowed_fails_with_a_hint(run_task, wasm_task):
    run = run_task(wasm_task(BIG_MEMORY, memory="1Mi"))

    assert run.outcome.output is None
    assert "needs more memory" in run.outcome.error
    assert "Resources.Memory" in run.outcome.error


def test_a_trap_fails_the_execution(run_task, wasm_task):
    run = run_task(wasm_task(TRAP))

    assert run.outcome.output is None
    assert "trapped" in run.outcome.error
    assert "unreachable" in run.outcome.error


def test_timeout_interrupts_a_spinning_module(run_task, wasm_task):
    run = run_task(wasm_task(SPIN, timeout=0.3))

    assert run.outcome.timed_out is True
    assert run.outcome.cancelled is False
    assert "timed out after 0.3s" in run.outcome.error


def test_cancel_interrupts_a_spinning_module(run_task, wasm_task):
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    run = run_task(wasm_task(SPIN, timeout=30), cancel=cancel)

    assert run.outcome.cancelled is True
    assert run.outcome.timed_out is False


def test_fuel_budget_stops_a_module_that_computes_too_long(run_task, wasm_task):
    run = run_task(wasm_task(SPIN, timeout=30), executor_settings={"wasm_fuel": 100_000})

    assert run.outcome.timed_out is False
    assert "CPU budget of 100000 fuel units" in run.outcome.error


def test_compiled_modules_are_cached_and_a_damaged_entry_is_recompiled(
    run_task, wasm_task, tmp_path
):
    own_cache = {"cache_dir": tmp_path}
    first = run_task(wasm_task("hello"), executor_settings=own_cache)
    cached = list(tmp_path.glob("*.cwasm"))
    assert cached, "compiling a module should leave a serialized copy"
    for path in cached:  # replaced, not rewritten in place: live modules map the old file
        damaged = path.with_suffix(".damaged")
        damaged.write_bytes(b"not a serialized module")
        damaged.replace(path)

    second = run_task(wasm_task("hello"), executor_settings=own_cache)

    assert (
        second.outcome.output.stdout
        == first.outcome.output.stdout
        == "hello from wasm\nGREETING=(unset)\n"
    )
    assert all(p.read_bytes() != b"not a serialized module" for p in cached)


def test_bytes_that_are_not_wasm_fail_with_a_hint(run_task, wasm_task):
    run = run_task(wasm_task(b"#!/bin/sh\necho not wasm\n"))

    assert "not a valid WebAssembly module" in run.outcome.error


def test_entry_module_must_be_one_of_the_inputs(run_task, wasm_task):
    task = wasm_task("hello")
    task["Engine"]["Params"]["EntryModule"] = "/elsewhere.wasm"

    run = run_task(task)

    assert "is not one of the task's inputs" in run.outcome.error
    assert run.hooks.calls == []


def test_entry_module_cannot_climb_out_of_its_mount_with_dot_dot(run_task, wasm_task):
    outside = (WASM_DIR / "hello.wasm").resolve()  # a real module outside every mount
    task = wasm_task("hello", results=[{"Name": "outputs", "Path": "/outputs"}])
    task["Engine"]["Params"]["EntryModule"] = "/outputs/" + "../" * 40 + str(outside)[1:]

    run = run_task(task)

    assert "contains '..'" in run.outcome.error
    assert run.hooks.calls == []


def test_entry_module_cannot_leave_its_mount_through_a_symlink(run_task, wasm_task, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "evil.wasm").symlink_to((WASM_DIR / "hello.wasm").resolve())
    source = {"Type": "localDirectory", "Params": {"SourcePath": str(shared)}}
    task = wasm_task("hello", inputs=[{"Source": source, "Target": "/data"}])
    task["Engine"]["Params"]["EntryModule"] = "/data/evil.wasm"

    run = run_task(task, executor_settings={"allowed_local_paths": [shared]})

    assert "leads outside its mount" in run.outcome.error
    assert run.hooks.calls == []


def test_legacy_entry_module_given_as_an_input_source(run_task, wasm_task):
    task = wasm_task("hello")
    source = task["InputSources"].pop(0)
    task["Engine"]["Params"]["EntryModule"] = {**source, "Target": ""}

    run = run_task(task)

    assert run.outcome.output.stdout.startswith("hello from wasm")


def test_missing_entrypoint_names_the_exports(run_task, wasm_task):
    task = wasm_task("hello")
    task["Engine"]["Params"]["Entrypoint"] = "main_loop"

    run = run_task(task)

    assert "exports no function 'main_loop'" in run.outcome.error
    assert "_start" in run.outcome.error
