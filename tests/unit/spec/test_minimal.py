"""Minimal forms become one-task batch jobs: docker run, wasm run, and code-runner requests."""

from __future__ import annotations

import pytest

from klippfisk.spec import SpecError, compile_document, compile_job


def test_docker_run_form_with_a_command_line() -> None:
    compiled = compile_document(
        "image: alpine:3\ncommand: echo hi && date\nenv: {COLOUR: blue}\ncpu: 0.5\n"
    )
    task = compiled.job["Tasks"][0]
    assert compiled.report.form == "minimal-docker"
    assert task["Engine"] == {
        "Type": "docker",
        "Params": {"Image": "alpine:3", "Entrypoint": ["/bin/sh", "-c", "echo hi && date"]},
    }
    assert (task["Env"], task["Resources"]["CPU"]) == ({"COLOUR": "blue"}, "500m")


def test_docker_run_form_with_command_and_args_lists() -> None:
    params = compile_job({"image": "u", "command": ["python3"], "args": ["-V"]}).job["Tasks"][0][
        "Engine"
    ]["Params"]
    assert params == {"Image": "u", "Entrypoint": ["python3"], "Parameters": ["-V"]}


def test_wasm_module_reference_is_mounted_as_the_entry_module() -> None:
    compiled = compile_job({"wasm": "ipfs://bafymodule", "args": ["x"]})
    task = compiled.job["Tasks"][0]
    assert task["Engine"]["Params"] == {
        "EntryModule": "/wasm/entry.wasm",
        "Entrypoint": "_start",
        "Parameters": ["x"],
    }
    assert task["InputSources"][0]["Source"] == {"Type": "ipfs", "Params": {"CID": "bafymodule"}}


@pytest.mark.parametrize(
    ("language", "image", "prefix"),
    [
        ("python", "python:3.11-slim", ["python3", "-c"]),
        ("javascript", "node:20-slim", ["node", "-e"]),
        ("bash", "ubuntu", ["bash", "-c"]),
        ("typescript", "node:22-slim", ["node", "--experimental-strip-types", "-e"]),
    ],
)
def test_code_runner_requests_pick_the_image_and_keep_outputs(
    language: str, image: str, prefix: list[str]
) -> None:
    compiled = compile_job(
        {"language": language, "code": "print(1)", "cpu": "250m", "memory": "256Mi", "timeout": 30}
    )
    task = compiled.job["Tasks"][0]
    assert task["Engine"]["Params"] == {"Image": image, "Entrypoint": [*prefix, "print(1)"]}
    assert task["Network"]["Type"] == "None"
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}]
    assert task["Publisher"]["Type"] == "local"
    assert task["Resources"]["Memory"] == str(256 * 2**20)
    assert task["Timeouts"]["ExecutionTimeout"] == 30


def test_code_runner_gpus_count_only_when_asked_for() -> None:
    def gpus(**request: object) -> str:
        job = compile_job({"language": "python", "code": "x", **request})
        return job.job["Tasks"][0]["Resources"]["GPU"]

    assert gpus(gpu=True, gpuCount=2) == "2"
    assert gpus(gpu=True) == "1"
    assert gpus(gpu=False, gpuCount=2) == "0"
    assert gpus() == "0"


def test_code_runner_network_stays_off_even_under_the_bacalhau_profile() -> None:
    job = compile_job({"language": "bash", "code": "ls"}, profile="bacalhau").job
    assert job["Tasks"][0]["Network"]["Type"] == "None"


def test_an_unknown_language_is_refused_with_the_choices() -> None:
    with pytest.raises(SpecError) as caught:
        compile_job({"language": "cobol", "code": "x"})
    assert "python" in caught.value.problems[0].hint


def test_minimal_forms_report_where_each_field_went() -> None:
    migrations = compile_job({"image": "u", "args": ["a"], "memory": "1Gi"}).report.migrations
    assert {(m.source, m.target) for m in migrations} >= {
        ("/image", "/Tasks/0/Engine/Params/Image"),
        ("/args", "/Tasks/0/Engine/Params/Parameters"),
        ("/memory", "/Tasks/0/Resources/Memory"),
    }
