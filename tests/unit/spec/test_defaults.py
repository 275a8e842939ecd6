"""Default profiles: `bacalhau` is exactly Bacalhau's server defaults, `klippfisk` closes the
gaps, and every value filled in is reported."""

from __future__ import annotations

from klippfisk.spec import compile_job

NOOP = {"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}


def test_bacalhau_profile_reproduces_the_orchestrator_defaults() -> None:
    compiled = compile_job(NOOP, profile="bacalhau")
    job, task = compiled.job, compiled.job["Tasks"][0]
    assert (job["Namespace"], job["Priority"], job["Count"]) == ("default", 0, 1)
    assert task["Resources"] == {"CPU": "500m", "Memory": "512000000", "Disk": "0", "GPU": "0"}
    assert task["Publisher"] == {"Type": "", "Params": {}}
    assert task["Network"]["Type"] == "Default"
    assert task["Timeouts"] == {"ExecutionTimeout": 0, "QueueTimeout": 0, "TotalTimeout": 0}


def test_klippfisk_profile_has_no_network_and_a_finite_timeout() -> None:
    task = compile_job(NOOP).job["Tasks"][0]
    assert task["Network"]["Type"] == "None"
    assert task["Timeouts"]["ExecutionTimeout"] == 1800


def test_long_running_jobs_get_no_timeout() -> None:
    service = dict(NOOP, Type="service")
    assert compile_job(service).job["Tasks"][0]["Timeouts"]["ExecutionTimeout"] == 0


def test_a_given_total_timeout_is_respected() -> None:
    job = {
        "Type": "batch",
        "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}, "Timeouts": {"TotalTimeout": 60}}],
    }
    assert compile_job(job).job["Tasks"][0]["Timeouts"] == {
        "ExecutionTimeout": 0,
        "QueueTimeout": 0,
        "TotalTimeout": 60,
    }


def test_every_default_applied_is_reported_with_its_profile() -> None:
    report = compile_job(NOOP).report
    applied = {d.pointer: d.value for d in report.defaults}
    assert applied == {
        "/Namespace": "default",
        "/Priority": 0,
        "/Count": 1,
        "/Tasks/0/Resources/CPU": "500m",
        "/Tasks/0/Resources/Memory": "512Mb",
        "/Tasks/0/Network/Type": "None",
        "/Tasks/0/Timeouts/ExecutionTimeout": 1800,
    }
    assert {d.profile for d in report.defaults} == {"klippfisk"}


def test_given_values_are_not_defaulted() -> None:
    job = {
        "Type": "batch",
        "Namespace": "lab",
        "Count": 2,
        "Tasks": [
            {"Name": "t", "Engine": {"Type": "noop"}, "Resources": {"CPU": "2", "Memory": "1Gi"}}
        ],
    }
    compiled = compile_job(job)
    assert not {"/Namespace", "/Count", "/Tasks/0/Resources/CPU"} & {
        d.pointer for d in compiled.report.defaults
    }
    assert compiled.job["Tasks"][0]["Resources"]["CPU"] == "2000m"
