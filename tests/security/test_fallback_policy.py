"""Strangers get the strongest box there is: with no Docker daemon, a docker task runs as a
sandboxed host process only for whoever KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR names.

Who is the operator: jobs from the CLI (and the library), and from HTTP keys marked
`"operator": true`; the bot's jobs and every other key's are strangers'. Each setting is
tried against each way in, as a user meets it: the CLI's `job run`, a real `klippfisk serve`
child process with both kinds of key, and the bot answering a mention.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from atproto import Client

from klippfisk.adapters.bluesky.bot import Bot, BotAccount
from klippfisk.adapters.bluesky.state import BotState
from klippfisk.adapters.bluesky.throttle import ServerThrottle
from klippfisk.adapters.cli import main
from klippfisk.adapters.http.server import serve_process
from klippfisk.adapters.settings import BotSettings
from klippfisk.engine import JobState, JobView, Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
from tests.unit.bluesky.standin_pds import StandInServer
from tests.unit.bluesky.test_bot import RunningBot, eventually, mention
from tests.unit.engine import test_former_ledger
from tests.unit.engine.test_former_ledger import KEYED, NAMED, TIMED_OUT

JOB = """
Name: {name}
Type: batch
Tasks:
  - Name: main
    Engine: {{Type: docker, Params: {{Image: "ubuntu:24.04", Entrypoint: [echo, on-the-host]}}}}
    Timeouts: {{ExecutionTimeout: 30}}
"""

SETTINGS = ["operator", "everyone", "none"]
# Which ways in may use the host sandbox under each setting.
ALLOWED = {
    "operator": {"cli", "operator key"},
    "everyone": {"cli", "operator key", "plain key", "bot"},
    "none": set(),
}
OPERATOR_KEY, PLAIN_KEY = "ops-key", "guest-key"
former = test_former_ledger.former  # the fixture: a ledger file written by earlier code


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, isolated_data_dir: Path) -> None:
    """No Docker daemon, here and in child processes, whatever this machine has."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    socket = str(isolated_data_dir / "no-docker.sock")
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__DOCKER__DEFAULT_SOCKET", socket)


def policy(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR", setting)


def assert_ran_or_refused(view: JobView, allowed: bool, setting: str, stranger: str) -> None:
    """Ran on the host when allowed; else failed, saying why and what to do."""
    [execution] = view.executions
    if allowed:
        assert view.state is JobState.COMPLETED, execution.error
        assert execution.stdout == "on-the-host\n"
        return
    assert view.state is JobState.FAILED
    assert f"KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR={setting}" in execution.error
    assert "Start Docker" in execution.error
    if setting == "operator":
        assert f"This job came from a stranger ({stranger})" in execution.error


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_clis_jobs_are_the_operators(setting, no_docker, monkeypatch, tmp_path, ledger, capsys):
    policy(monkeypatch, setting)
    path = tmp_path / "job.yaml"
    path.write_text(JOB.format(name="from-the-cli"))

    code = main(["job", "run", str(path)])

    allowed = "cli" in ALLOWED[setting]
    assert (code == 0) is allowed, capsys.readouterr().err
    assert_ran_or_refused(ledger.get("from-the-cli"), allowed, setting, "")


@pytest.mark.parametrize("setting", SETTINGS)
def test_only_keys_marked_operator_are_the_operators(
    setting, no_docker, monkeypatch, ledger: Ledger
):
    policy(monkeypatch, setting)
    keys = [
        {"key": OPERATOR_KEY, "name": "ops", "operator": True},
        {"key": PLAIN_KEY, "name": "guest"},
    ]
    monkeypatch.setenv("KLIPPFISK_SERVER__API_KEYS", json.dumps(keys))
    jobs = {}
    with serve_process() as (_, url):
        for who, key in (("operator key", OPERATOR_KEY), ("plain key", PLAIN_KEY)):
            jobs[who] = submit_over_http(url, key, who.replace(" ", "-"))
        views = {who: ledger.wait(job_id, timeout=60) for who, job_id in jobs.items()}

    for who, view in views.items():
        assert_ran_or_refused(view, who in ALLOWED[setting], setting, "guest via http")


def submit_over_http(url: str, key: str, name: str) -> str:
    """Submit JOB as the Go client does (PUT /api/v1/orchestrator/jobs); its job id."""
    job = yaml.safe_load(JOB.format(name=name))
    response = httpx.put(
        f"{url}/api/v1/orchestrator/jobs",
        json={"Job": job},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["JobID"]


@pytest.fixture
def pds() -> Iterator[StandInServer]:
    server = StandInServer()
    yield server
    server.close()


@pytest.fixture
def bot(pds: StandInServer, ledger: Ledger, tmp_path: Path) -> Iterator[Callable[[], BotState]]:
    """Start the bot on the stand-in PDS; its state, to mention it."""
    state = BotState(tmp_path / "state.db")
    running: list[RunningBot] = []

    def start() -> BotState:
        settings = BotSettings(
            service=pds.url,
            handle="jobs.test",
            app_password="app-pw",
            poll_seconds=0.02,
            wait_seconds=0.2,
            fetch_allow=[pds.address],
        )
        account = BotAccount(Client(base_url=pds.url), "did:plc:bot", ServerThrottle(retries=0))
        running.append(RunningBot(Bot(account, ledger, state, settings, threading.Event())))
        return state

    yield start
    for each in running:
        each.stop()
    state.close()


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_bots_jobs_are_strangers(setting, no_docker, monkeypatch, pds, bot, ledger):
    policy(monkeypatch, setting)
    pds.files["/job.yaml"] = JOB.format(name="from-the-bot").encode()
    asked = mention(bot(), "did:plc:alice", f"job run {pds.url}/job.yaml", 1)
    settings = Settings()
    runner = Runner(ledger, default_registry(settings), settings)
    runner.start()
    try:
        view = ended(ledger, asked)
    finally:
        runner.stop()

    allowed = "bot" in ALLOWED[setting]
    assert_ran_or_refused(view, allowed, setting, "did:plc:alice via bluesky")
    said = "completed" if allowed else "failed: This"
    replied = f"Job {view.id} {said}"
    eventually(lambda: any(text.startswith(replied) for text in pds.replies()), "the answer")


def ended(ledger: Ledger, source_ref: str) -> JobView:
    """The job a mention submitted, once it has ended."""
    deadline = time.monotonic() + 60
    while not (jobs := ledger.list_jobs(source_ref=source_ref).items):
        assert time.monotonic() < deadline, "the bot never submitted the job"
        time.sleep(0.02)
    return ledger.wait(jobs[0].id, timeout=60)


def test_jobs_recorded_before_sources_named_the_operator_keep_their_way_ins_trust(former):
    """A ledger written before `Source.operator` existed: the library's and the CLI's jobs
    were the operator's, the bot's and HTTP keys' were not (no key was marked operator)."""
    with Ledger.open(former) as ledger:
        sources = [ledger.get(job).source for job in (NAMED, KEYED, TIMED_OUT)]
    trusted = {source.adapter: source.operator for source in sources}

    assert trusted == {"http": False, "bluesky": False, "library": True}
