"""What a command imports before it does anything: only what it needs.

Every command's parser is built on every run, so a module-level import of the ledger in any
command module makes `klippfisk spec validate` pay for eventsourcing and the PostgreSQL
driver. Each case runs the real entry point in a fresh interpreter and lists the heavy
packages that ended up in `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
HELLO = ROOT / "examples" / "hello.yaml"

# Packages only the ledger, the server or the bot need.
HEAVY = (
    "eventsourcing",
    "psycopg",
    "psycopg_pool",
    "fastapi",
    "uvicorn",
    "atproto",
    "wasmtime",
    "httpx",
)

_PROBE = """
import json, sys
from klippfisk.adapters.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.stdin.read())))
print(json.dumps({"code": code, "heavy": heavy}))
"""


def imported(*argv: str) -> dict[str, object]:
    """Run `klippfisk *argv` in a fresh interpreter: its exit code and the heavy packages
    it imported (the command's own output is dropped; only the probe's last line is read)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ("spec", "validate", str(HELLO)),
        ("--help",),
        ("spec", "compile", "--help"),
    ],
    ids=["spec-validate", "help", "spec-compile-help"],
)
def test_commands_that_never_touch_the_ledger_do_not_import_it(argv):
    assert imported(*argv) == {"code": 0, "heavy": []}


def test_a_ledger_command_still_gets_the_ledger():
    """The probe itself can see the ledger's packages when a command does import them."""
    result = imported("ledger", "verify")

    assert result["code"] == 0
    assert "eventsourcing" in result["heavy"]
