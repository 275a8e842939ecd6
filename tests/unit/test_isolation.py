"""The suite is its own world: settings the user has exported do not reach its tests.

A developer with KLIPPFISK_LEDGER__PATH (or any other KLIPPFISK_* setting) in their shell
must still see the suite pass, and their ledger untouched. A slice of the suite that opens
ledgers (directly, and through `job run` on a docker task) runs in a pytest subprocess with
the ledger path exported to a place no ledger can be written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SLICE = [
    "tests/unit/engine/test_ledger.py::test_a_job_goes_in_compiled_and_comes_out_described",
    "tests/unit/executors/test_docker_jobs.py::test_job_run_uses_the_daemon_docker_host_names",
    "tests/unit/cli/test_run_cmds.py::test_job_run_prints_the_host_fallback_line",
]


def test_an_exported_ledger_path_does_not_reach_the_suites_tests():
    unwritable = "/proc/klippfisk-no-ledger-here/ledger.db"
    env = {**os.environ, "KLIPPFISK_LEDGER__PATH": unwritable}

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *SLICE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
