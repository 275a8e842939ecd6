"""Per-job overhead of the embedded executor, beside the floor of the same work done directly.

    python3 -P bench/run.py [--jobs N]   (-P: bench/http.py must not shadow the stdlib)

Measures, in a throw-away data directory:
  * wasm hello: a direct wasmtime call (cached module, fresh store, WASI, output to a file)
    against the executor running the same task (workspace, inputs, results, limits, and a
    process of its own per execution);
  * python.wasm print: the same for a Python code-runner task in python.wasm (when the
    python-wasm extra is installed);
  * host hello: a plain `subprocess.run(["/bin/sh", "-c", "echo hello"])` against the
    executor's sandboxed host process;
  * throughput: jobs per second through submit -> run -> Completed with the real ledger
    (SQLite) and runner, for noop, wasm and host jobs.
Numbers are medians of repeated runs, plus the CPU time child processes took per run (the
sandbox's start-up cost, steadier than wall time on a busy machine); they depend on the
machine, so they are printed, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import base64
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

from klippfisk.engine import Ledger
from klippfisk.engine.executors.base import ExecutionRequest
from klippfisk.engine.executors.local import LocalExecutor
from klippfisk.engine.executors.local.python_wasm import find_python_wasm
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import DockerSettings, ExecutorSettings, LedgerSettings, Settings
from klippfisk.spec import compile_job

HELLO = Path(__file__).parents[1] / "tests" / "data" / "wasm" / "hello.wasm"


class _Hooks:
    def started(self, node: str, notes: list[str]) -> None:
        pass

    def progress(self, message: str) -> None:
        pass


def measure_ms(action: Callable[[int], object], repeat: int) -> tuple[float, float]:
    """Median wall time of a run, and the CPU time its child processes used per run.

    The second figure is the steadier one on a shared machine: other load stretches wall
    time, not the CPU a sandbox start-up costs.
    """
    action(-1)  # warm-up: compile caches, page cache, imports
    times = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return statistics.median(times) * 1000, cpu / repeat * 1000


def wasm_task() -> dict:
    url = "data:application/wasm;base64," + base64.b64encode(HELLO.read_bytes()).decode()
    return {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/hello.wasm"}},
        "InputSources": [
            {"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": "/hello.wasm"}
        ],
    }


def host_task() -> dict:
    return {
        "Name": "main",
        "Engine": {
            "Type": "docker",
            "Params": {
                "Image": "ubuntu",
                "Entrypoint": ["/bin/sh", "-c"],
                "Parameters": ["echo hello"],
            },
        },
    }


def python_task() -> dict:
    params = {"Image": "python:3.12", "Entrypoint": ["python3", "-c"], "Parameters": ["print(1)"]}
    return {"Name": "main", "Engine": {"Type": "docker", "Params": params}}


def direct_wasm(scratch: Path, wasm: Path, argv: list[str]) -> Callable[[int], object]:
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, wasm.read_bytes())

    def run(i: int) -> None:
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = str(scratch / "direct-stdout")
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.instantiate(store, module).exports(store)["_start"](store)

    return run


def via_executor(settings: Settings, task: dict) -> Callable[[int], object]:
    executor = LocalExecutor(settings)

    def run(i: int) -> None:
        results = settings.data_dir / "results" / "j-bench" / f"e-{i}-{time.monotonic_ns()}"
        request = ExecutionRequest("j-bench", "e-bench", {"Tasks": [task]}, task, "", results)
        outcome = executor.run(request, _Hooks(), threading.Event())
        assert outcome.output is not None and outcome.output.exit_code == 0, outcome

    return run


def throughput(settings: Settings, task: dict, jobs: int) -> float:
    ledger = Ledger.open(settings)
    runner = Runner(ledger, default_registry(settings), settings)
    compiled = compile_job({"Type": "batch", "Count": 1, "Tasks": [task]})
    runner.run_job(ledger.submit(compiled).job_id)  # warm-up
    start = time.perf_counter()
    for _ in range(jobs):
        view = runner.run_job(ledger.submit(compiled).job_id)
        assert str(view.state) == "Completed", view.state
    elapsed = time.perf_counter() - start
    ledger.close()
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per throughput run")
    parser.add_argument("--repeat", type=int, default=30, help="runs per overhead median")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klippfisk-bench-") as tmp:
        data = Path(tmp)
        no_docker = DockerSettings(host=None, default_socket=data / "no-docker.sock")
        settings = Settings(
            data_dir=data,
            ledger=LedgerSettings(path=data / "ledger.db"),
            executor=ExecutorSettings(docker=no_docker),  # the host sandbox, even where Docker is
        )
        print(
            f"{'case':<34}{'floor ms':>10}{'klippfisk ms':>14}{'overhead ms':>13}"
            f"{'child CPU ms':>14}{'floor CPU ms':>14}"
        )
        hello = direct_wasm(data, HELLO, ["hello.wasm"])
        pairs = [
            ("wasm hello (cached module)", hello, via_executor(settings, wasm_task())),
            (
                "host hello (sh -c echo)",
                lambda i: subprocess.run(["/bin/sh", "-c", "echo hello"], capture_output=True),
                via_executor(settings, host_task()),
            ),
        ]
        python_wasm = find_python_wasm(settings.executor)
        if python_wasm is not None:
            floor = direct_wasm(data, python_wasm, ["python", "-c", "print(1)"])
            pairs.append(("python.wasm print", floor, via_executor(settings, python_task())))
        for name, floor, ours in pairs:
            floor_ms, floor_cpu = measure_ms(floor, args.repeat)
            ours_ms, ours_cpu = measure_ms(ours, args.repeat)
            print(
                f"{name:<34}{floor_ms:>10.2f}{ours_ms:>14.2f}{ours_ms - floor_ms:>13.2f}"
                f"{ours_cpu:>14.2f}{floor_cpu:>14.2f}"
            )
        print()
        print(f"{'throughput (submit -> Completed)':<34}{'jobs/s':>10}")
        noop = {"Name": "main", "Engine": {"Type": "noop"}}
        for name, task in (
            ("noop", noop),
            ("wasm hello", wasm_task()),
            ("host hello", host_task()),
        ):
            print(f"{name:<34}{throughput(settings, task, args.jobs):>10.1f}")


if __name__ == "__main__":
    main()
