"""Numbers no machine (or no Go integer) could hold: refused as located problems with a hint,
in every form a job can be written in, never an overflow escaping the compiler."""

from __future__ import annotations

from typing import Any

import pytest

from klippfisk.spec import LoadError, SpecError, compile_document, compile_job

CURRENT = """\
Type: batch
Tasks:
  - Name: main
    Engine: {Type: docker, Params: {Image: ubuntu}}
    Resources: {CPU: "1e400"}
"""
LEGACY = """\
APIVersion: V1beta1
Spec:
  Engine: Docker
  Docker: {Image: ubuntu}
  Resources: {CPU: "1e400"}
"""
MINIMAL = '{"image": "ubuntu", "command": ["echo", "hi"], "cpu": "1e400"}'


def _problem(text: str, pointer: str) -> Any:
    with pytest.raises(SpecError) as caught:
        compile_document(text)
    found = {p.pointer: p for p in caught.value.problems}
    assert pointer in found, caught.value
    return found[pointer]


@pytest.mark.parametrize(
    ("text", "line"),
    [(CURRENT, 5), (LEGACY, 5), (MINIMAL, 1)],
    ids=["current", "legacy", "minimal"],
)
def test_infinite_cpu_is_a_located_problem_in_every_form(text: str, line: int) -> None:
    problem = _problem(text, "/Tasks/0/Resources/CPU")
    assert "far more than any machine" in problem.message
    assert problem.line == line and problem.hint


def test_infinite_cpu_in_a_parsed_body_is_the_compilers_error() -> None:
    with pytest.raises(SpecError) as caught:
        compile_job({"image": "ubuntu", "command": ["true"], "cpu": "1e400"})
    assert caught.value.problems[0].pointer == "/Tasks/0/Resources/CPU"


def test_a_gpu_count_bacalhau_could_not_hold_is_refused_with_the_limit() -> None:
    text = CURRENT.replace('CPU: "1e400"', 'GPU: "12345678901234567890123456789"')
    problem = _problem(text, "/Tasks/0/Resources/GPU")
    assert "at most 9007199254740991" in problem.message and problem.line == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [("Memory", "9" * 5000), ("Disk", "1e400"), ("GPU", 10**400), ("CPU", -(10**400))],
)
def test_enormous_resources_in_parsed_bodies_are_problems(field: str, value: object) -> None:
    job = {
        "Type": "batch",
        "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}, "Resources": {field: value}}],
    }
    with pytest.raises(SpecError) as caught:
        compile_job(job)
    assert [p.pointer for p in caught.value.problems] == [f"/Tasks/0/Resources/{field}"]


def test_timeouts_longer_than_a_go_duration_are_refused() -> None:
    text = CURRENT.replace('Resources: {CPU: "1e400"}', "Timeouts: {ExecutionTimeout: 9223372037}")
    problem = _problem(text, "/Tasks/0/Timeouts/ExecutionTimeout")
    assert "9223372036 seconds" in problem.message and problem.line == 5


def test_a_port_number_of_thousands_of_digits_is_a_problem() -> None:
    network = {"Type": "Bridge", "Ports": [{"Name": "HTTP", "Static": 10**5000}]}
    job = {
        "Type": "batch",
        "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}, "Network": network}],
    }
    with pytest.raises(SpecError) as caught:
        compile_job(job)
    assert "outside 1024-65535" in caught.value.problems[0].message


def test_a_json_integer_too_long_to_read_is_a_located_load_error() -> None:
    text = (
        '{"Type": "batch",\n "Count": ' + "9" * 5000 + ', "Meta": {"a": [1, -' + "1" * 4400 + "]}}"
    )
    with pytest.raises(LoadError) as caught:
        compile_document(text)
    problems = [(p.pointer, p.line, p.code) for p in caught.value.problems]
    assert problems == [("/Count", 2, "number"), ("/Meta/a/1", 2, "number")]
    assert "5000 digits" in caught.value.problems[0].message
    assert caught.value.problems[0].hint


def test_a_yaml_integer_too_long_to_read_is_located_and_not_repeated_in_full() -> None:
    with pytest.raises(LoadError) as caught:
        compile_document("Type: batch\nCount: " + "9" * 5000 + "\n")
    problem = caught.value.problems[0]
    assert (problem.pointer, problem.line) == ("/Count", 2)
    assert len(problem.message) < 200 and "quote it" in problem.hint
