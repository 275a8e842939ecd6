"""Bacalhau's submission rules, each refused with a pointer and a hint, and the normalisation
of quantities that comes with checking them."""

from __future__ import annotations

from typing import Any

import pytest

from klippfisk.spec import SpecError, compile_job


def _job(task: dict[str, Any] | None = None, **job: Any) -> dict[str, Any]:
    base_task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "docker", "Params": {"Image": "u"}},
    }
    base_task.update(task or {})
    return {"Type": "batch", "Tasks": [base_task], **job}


def _problems(job: dict[str, Any], profile: str = "bacalhau") -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        compile_job(job, profile=profile)
    assert all(p.hint for p in caught.value.problems)
    return {p.pointer: p.message for p in caught.value.problems}


def _task(job: dict[str, Any], profile: str = "bacalhau") -> dict[str, Any]:
    return compile_job(job, profile=profile).job["Tasks"][0]


@pytest.mark.parametrize(
    ("job", "pointer"),
    [
        ({"Type": "", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}, "/Type"),
        ({"Type": "cron", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}, "/Type"),
        (_job(Count=-1), "/Count"),
        (_job(Type="daemon", Count=2), "/Count"),
        (_job(Type="ops", Count=3), "/Count"),
        ({"Type": "batch", "Tasks": []}, "/Tasks"),
        (_job({"Name": ""}), "/Tasks/0/Name"),
        (_job({"Engine": None}), "/Tasks/0/Engine"),
        (_job({"Engine": {"Type": ""}}), "/Tasks/0/Engine/Type"),
        (_job(Name="a\x00b"), "/Name"),
    ],
)
def test_job_level_rules(job: dict[str, Any], pointer: str) -> None:
    assert pointer in _problems(job)


def test_daemon_and_ops_jobs_run_on_every_node_so_count_is_zero() -> None:
    for job_type in ("daemon", "ops"):
        assert compile_job(_job(Type=job_type, Count=1)).job["Count"] == 0


def test_batch_and_service_jobs_default_to_one_execution() -> None:
    for job_type in ("batch", "service"):
        assert compile_job(_job(Type=job_type)).job["Count"] == 1
    assert compile_job(_job(Count=0)).job["Count"] == 0


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("lower", "upper case"),
        ("1ABC", "start with a letter"),
        ("A-B", "letters, digits and underscores"),
        ("BACALHAU_X", "must not start with BACALHAU_"),
    ],
)
def test_environment_variable_names(name: str, fault: str) -> None:
    problems = _problems(_job({"Env": {name: "v"}}))
    assert fault in problems[f"/Tasks/0/Env/{name}"]


def test_environment_variables_need_a_value() -> None:
    assert "empty value" in _problems(_job({"Env": {"A": ""}}))["/Tasks/0/Env/A"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ({"CPU": "500m", "Memory": "2GB"}, {"CPU": "500m", "Memory": "2000000000"}),
        ({"CPU": "0.25", "Memory": "2Gi"}, {"CPU": "250m", "Memory": "2147483648"}),
        ({"CPU": 2, "Memory": "512Mb"}, {"CPU": "2000m", "Memory": "512000000"}),
        (
            {"CPU": "1", "Memory": "1 GiB", "Disk": "10gb", "GPU": "2"},
            {"Disk": "10000000000", "GPU": "2"},
        ),
    ],
)
def test_quantities_are_parsed_as_bacalhau_does_and_written_one_way(
    given: dict[str, Any], canonical: dict[str, str]
) -> None:
    resources = _task(_job({"Resources": given}))["Resources"]
    assert {k: resources[k] for k in canonical} == canonical


@pytest.mark.parametrize(
    ("field", "value"),
    [("CPU", "lots"), ("Memory", "2 parsecs"), ("Disk", "-1"), ("GPU", "1.5"), ("GPU", "-1")],
)
def test_bad_quantities_are_refused(field: str, value: str) -> None:
    assert f"/Tasks/0/Resources/{field}" in _problems(_job({"Resources": {field: value}}))


def test_timeouts_must_not_be_negative_and_must_fit_the_total() -> None:
    problems = _problems(_job({"Timeouts": {"ExecutionTimeout": -1}}))
    assert "/Tasks/0/Timeouts/ExecutionTimeout" in problems
    over = _job({"Timeouts": {"ExecutionTimeout": 60, "QueueTimeout": 60, "TotalTimeout": 100}})
    assert "exceed" in _problems(over)["/Tasks/0/Timeouts/TotalTimeout"]
    fits = _job({"Timeouts": {"ExecutionTimeout": "1m", "QueueTimeout": 40, "TotalTimeout": 100}})
    assert _task(fits)["Timeouts"] == {
        "ExecutionTimeout": 60,
        "QueueTimeout": 40,
        "TotalTimeout": 100,
    }


def test_input_sources_need_a_target_and_unique_alias_and_target() -> None:
    source = {"Type": "ipfs", "Params": {"CID": "Qm"}}
    problems = _problems(
        _job(
            {
                "InputSources": [
                    {"Source": source, "Alias": "a", "Target": "/in"},
                    {"Source": source, "Alias": "a", "Target": "/in"},
                    {"Source": source, "Target": ""},
                    {"Source": {"Type": ""}, "Target": "/x"},
                ]
            }
        )
    )
    assert {
        "/Tasks/0/InputSources/1/Alias",
        "/Tasks/0/InputSources/1/Target",
        "/Tasks/0/InputSources/2/Target",
        "/Tasks/0/InputSources/3/Source/Type",
    } <= set(problems)


def test_result_paths_are_absolute_unique_and_need_a_publisher() -> None:
    results = [
        {"Name": "a", "Path": "/out"},
        {"Name": "a", "Path": "/out"},
        {"Name": "b", "Path": "rel"},
    ]
    problems = _problems(_job({"ResultPaths": results}))
    assert {
        "/Tasks/0/ResultPaths/1/Name",
        "/Tasks/0/ResultPaths/1/Path",
        "/Tasks/0/ResultPaths/2/Path",
        "/Tasks/0/Publisher",
    } <= set(problems)


def test_the_klippfisk_profile_supplies_a_publisher_for_results() -> None:
    task = _task(_job({"ResultPaths": [{"Name": "a", "Path": "/out"}]}), profile="klippfisk")
    assert task["Publisher"] == {"Type": "local", "Params": {}}


def test_network_domains_only_for_http_and_must_be_domains() -> None:
    assert "/Tasks/0/Network/Domains" in _problems(
        _job({"Network": {"Type": "Full", "Domains": ["a.com"]}})
    )
    assert "/Tasks/0/Network/Domains" in _problems(
        _job({"Network": {"Type": "HTTP", "Domains": ["!!"]}})
    )
    network = _task(_job({"Network": {"Type": "http", "Domains": ["B.com", "a.com", "10.0.0.1"]}}))[
        "Network"
    ]
    assert network == {"Type": "HTTP", "Domains": ["10.0.0.1", "a.com", "b.com"], "Ports": []}
    assert "/Tasks/0/Network/Type" in _problems(_job({"Network": {"Type": "wifi"}}))


@pytest.mark.parametrize(
    ("network", "pointer"),
    [
        ({"Type": "None", "Ports": [{"Name": "WEB"}]}, "/Tasks/0/Network/Ports"),
        ({"Type": "Host", "Ports": [{"Name": ""}]}, "/Tasks/0/Network/Ports/0/Name"),
        ({"Type": "Host", "Ports": [{"Name": "1X"}]}, "/Tasks/0/Network/Ports/0/Name"),
        (
            {"Type": "Host", "Ports": [{"Name": "A", "Static": 80}]},
            "/Tasks/0/Network/Ports/0/Static",
        ),
        (
            {"Type": "Host", "Ports": [{"Name": "A", "Target": 8080}]},
            "/Tasks/0/Network/Ports/0/Target",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "A", "Target": 70000}]},
            "/Tasks/0/Network/Ports/0/Target",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "A", "HostNetwork": "x"}]},
            "/Tasks/0/Network/Ports/0/HostNetwork",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "A"}, {"Name": "A"}]},
            "/Tasks/0/Network/Ports/1/Name",
        ),
        (
            {
                "Type": "Bridge",
                "Ports": [{"Name": "A", "Static": 2000}, {"Name": "B", "Static": 2000}],
            },
            "/Tasks/0/Network/Ports/1/Static",
        ),
    ],
)
def test_port_rules(network: dict[str, Any], pointer: str) -> None:
    assert pointer in _problems(_job({"Network": network}))


@pytest.mark.parametrize(
    ("constraint", "pointer"),
    [
        ({"Key": "", "Operator": "exists"}, "/Constraints/0/Key"),
        ({"Key": "k", "Operator": "in"}, "/Constraints/0/Values"),
        ({"Key": "k", "Operator": "exists", "Values": ["x"]}, "/Constraints/0/Values"),
        ({"Key": "k", "Operator": "=", "Values": ["a", "b"]}, "/Constraints/0/Values"),
        ({"Key": "k", "Operator": "In", "Values": ["a"]}, "/Constraints/0/Operator"),
    ],
)
def test_constraint_operators_and_value_counts(constraint: dict[str, Any], pointer: str) -> None:
    assert pointer in _problems(_job(Constraints=[constraint]))


def test_docker_params_need_an_image_and_an_absolute_workdir() -> None:
    problems = _problems(
        _job({"Engine": {"Type": "docker", "Params": {"WorkingDirectory": "rel"}}})
    )
    assert {"/Tasks/0/Engine/Params/Image", "/Tasks/0/Engine/Params/WorkingDirectory"} <= set(
        problems
    )


def test_engine_params_are_matched_case_insensitively_and_written_canonically() -> None:
    engine = _task(
        _job({"Engine": {"Type": "Docker", "Params": {"image": "u", "entrypoint": ["a"]}}})
    )["Engine"]
    assert engine == {"Type": "docker", "Params": {"Image": "u", "Entrypoint": ["a"]}}


def test_wasm_needs_an_entry_module() -> None:
    assert "/Tasks/0/Engine/Params/EntryModule" in _problems(_job({"Engine": {"Type": "wasm"}}))


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"EntryModule": "../main.wasm"}, "EntryModule"),
        ({"EntryModule": "/job/../../etc/main.wasm"}, "EntryModule"),
        (
            {"EntryModule": "/job/m.wasm", "ImportModules": ["/lib/..\\..\\x.wasm"]},
            "ImportModules/0",
        ),
    ],
)
def test_wasm_module_paths_may_not_climb_out_with_dot_dot(
    params: dict[str, Any], pointer: str
) -> None:
    problems = _problems(_job({"Engine": {"Type": "wasm", "Params": params}}))
    assert "'..'" in problems[f"/Tasks/0/Engine/Params/{pointer}"]


def test_wasm_module_names_with_dots_inside_a_segment_are_fine() -> None:
    params = {"EntryModule": "/job/main..v2.wasm", "ImportModules": ["/lib/..hidden.wasm"]}
    engine = _task(_job({"Engine": {"Type": "wasm", "Params": params}}))["Engine"]
    assert engine["Params"]["EntryModule"] == "/job/main..v2.wasm"


@pytest.mark.parametrize("padding", [0, 200])
def test_quantities_normalise_alike_however_often_and_however_long_they_are_spelled(
    padding: int,
) -> None:
    """Canonical forms of common spellings are remembered between documents; a refusal
    must still be reported every time, and a long spelling read in full each time."""
    resources = {"CPU": "0" * padding + "1.5", "Memory": "0" * padding + "512Mb", "GPU": 1}
    for _ in range(2):
        task = _task(_job({"Resources": resources}))
        assert task["Resources"] == {"CPU": "1500m", "Memory": "512000000", "Disk": "0", "GPU": "1"}
        refused = _problems(_job({"Resources": {**resources, "Memory": "0" * padding + "5Zb"}}))
        assert set(refused) == {"/Tasks/0/Resources/Memory"}
