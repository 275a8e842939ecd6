"""The pipeline end to end: forms, locations, templating, profiles, addresses, report."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from klippfisk.spec import (
    DEFAULT_LIMITS,
    PROFILES,
    LoadError,
    LoadLimits,
    SpecError,
    TemplateError,
    cid_of,
    compile_document,
    compile_job,
    compile_path,
    compile_url,
    format_cpu,
    load_document,
    parse_cpu,
    read_source,
    render,
    variables_from,
)

DOCKER_JOB = """\
Name: hello
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: ubuntu:24.04
        Parameters: [echo, hi]
"""


def test_a_current_job_compiles_to_bacalhau_pascal_case_with_every_field() -> None:
    job = compile_document(DOCKER_JOB).job
    assert list(job) == [
        "Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta", "Labels", "Tasks",
    ]  # fmt: skip
    task = job["Tasks"][0]
    assert list(task) == [
        "Name", "Engine", "Publisher", "Env", "Meta", "InputSources", "ResultPaths",
        "Resources", "Network", "Timeouts",
    ]  # fmt: skip
    assert task["Resources"] == {"CPU": "500m", "Memory": "512000000", "Disk": "0", "GPU": "0"}


def test_every_problem_is_reported_at_once_with_line_and_column() -> None:
    text = """\
Type: sometimes
Count: -1
Tasks:
  - Name: main
    Engine: {Type: docker, Params: {}}
    Env: {lower: x}
"""
    with pytest.raises(SpecError) as caught:
        compile_document(text, source="job.yaml")
    found = {p.pointer: p.line for p in caught.value.problems}
    assert found == {
        "/Type": 1,
        "/Count": 2,
        "/Tasks/0/Engine/Params/Image": 5,
        "/Tasks/0/Env/lower": 6,
    }
    assert all(p.column for p in caught.value.problems)
    assert "job.yaml" in str(caught.value)


def test_problem_pointers_use_the_key_spelling_of_the_document() -> None:
    text = "type: batch\ntasks:\n  - name: main\n    engine: {type: docker, params: {}}\n"
    with pytest.raises(SpecError) as caught:
        compile_document(text)
    assert [p.pointer for p in caught.value.problems] == ["/tasks/0/engine/params/Image"]
    assert caught.value.problems[0].line == 4


def test_type_errors_name_the_field_and_how_to_fix_it() -> None:
    with pytest.raises(SpecError) as caught:
        compile_document("Type: batch\nCount: many\nTasks: []\n")
    problem = caught.value.problems[0]
    assert (problem.pointer, problem.line, problem.code) == ("/Count", 2, "type")
    assert "whole number" in problem.hint


def test_the_job_wrapper_of_the_http_api_is_accepted() -> None:
    wrapped = compile_job(
        {"Job": {"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}}
    )
    bare = compile_job({"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]})
    assert wrapped.job_cid == bare.job_cid


def test_server_owned_fields_are_stripped_with_a_warning() -> None:
    compiled = compile_document(DOCKER_JOB + "ID: j-123\nState: {StateType: Running}\n")
    assert "ID" not in compiled.job and "State" not in compiled.job
    assert compiled.job_cid == compile_document(DOCKER_JOB).job_cid
    assert {w.code for w in compiled.report.warnings} == {"server-field-ignored"}


def test_unknown_fields_warn_with_a_suggestion() -> None:
    compiled = compile_document(DOCKER_JOB + "Lables: {a: b}\n")
    warning = compiled.report.warnings[0]
    assert (warning.code, warning.pointer, warning.line) == ("unknown-field", "/Lables", 10)
    assert "Labels" in warning.hint


def test_templating_renders_variables_before_parsing() -> None:
    text = DOCKER_JOB.replace("ubuntu:24.04", "{{ .image }}").replace(
        "hi]", '{{ or .word "hey" }}]'
    )
    compiled = compile_document(text, variables={"image": "alpine:3"})
    params = compiled.job["Tasks"][0]["Engine"]["Params"]
    assert (params["Image"], params["Parameters"]) == ("alpine:3", ["echo", "hey"])


def test_a_missing_template_key_is_an_error_naming_key_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_document(DOCKER_JOB.replace("ubuntu:24.04", "{{.image}}"), variables={})
    assert "image" in str(caught.value)
    assert caught.value.problems[0].line == 8


def test_without_variables_template_text_is_left_alone() -> None:
    text = DOCKER_JOB.replace("[echo, hi]", "[echo, '{{.x}}']")
    params = compile_document(text).job["Tasks"][0]["Engine"]["Params"]
    assert params["Parameters"] == ["echo", "{{.x}}"]


def test_load_errors_surface_as_the_compilers_error_type() -> None:
    with pytest.raises(LoadError):
        compile_document(b"\xff\xfe\x00binary")
    with pytest.raises(SpecError):
        compile_document("- just\n- a list\n")


def test_profiles_are_named_and_versioned_in_the_report() -> None:
    for name in PROFILES:
        report = compile_document(DOCKER_JOB, profile=name).report
        assert (report.profile, report.profile_version) == (name, PROFILES[name].version)
    with pytest.raises(SpecError) as caught:
        compile_document(DOCKER_JOB, profile="nope")
    assert "klippfisk" in caught.value.problems[0].hint


def test_task_cid_ignores_names_but_not_what_runs() -> None:
    first = compile_document(DOCKER_JOB)
    renamed = compile_document(DOCKER_JOB.replace("Name: hello", "Name: other"))
    changed = compile_document(DOCKER_JOB.replace("[echo, hi]", "[echo, ho]"))
    assert first.job_cid != renamed.job_cid
    assert first.task_cids["main"] == renamed.task_cids["main"]
    assert first.task_cids["main"] != changed.task_cids["main"]


def test_extra_tasks_are_dropped_with_a_warning_as_bacalhau_does() -> None:
    text = DOCKER_JOB + "  - Name: second\n    Engine: {Type: noop}\n"
    compiled = compile_document(text)
    assert [t["Name"] for t in compiled.job["Tasks"]] == ["main"]
    assert "extra-tasks-dropped" in {w.code for w in compiled.report.warnings}


def test_reserved_meta_keys_are_dropped_with_a_warning() -> None:
    compiled = compile_document(DOCKER_JOB + "Meta: {bacalhau.org/requester.id: x, team: a}\n")
    assert compiled.job["Meta"] == {"team": "a"}
    assert [w.code for w in compiled.report.warnings] == ["reserved-meta-key"]


def test_compile_path_reads_files_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(DOCKER_JOB, encoding="utf-8")
    compiled = compile_path(path)
    assert compiled.source == str(path)
    assert compiled.to_dict()["job_cid"] == compiled.job_cid


def test_a_document_of_no_known_form_says_which_forms_exist() -> None:
    with pytest.raises(SpecError) as caught:
        compile_document("hello: world\n")
    assert "minimal form" in caught.value.problems[0].hint


@pytest.mark.parametrize(
    "data",
    [
        {
            "APIVersion": "V1beta1",
            "Spec": {"EngineSpec": {"Type": "wasm", "Params": {"EntryModule": "s"}}},
        },
        {"APIVersion": "V1beta1", "Spec": {"Engine": "noop", "Timeout": 1e300}},
        {"with": "x", "do": "noop", "meta": {"bacalhau/config": {"timeout": float("inf")}}},
        {"Type": "batch", "Count": 10**400, "Tasks": []},
        {
            "Type": "batch",
            "Tasks": [{"Name": "m", "Engine": {"Type": "noop", "Params": {"n": 2**64}}}],
        },
        {"Type": "batch", "Tasks": [None, 1]},
        {"with": "x", "do": "docker/run", "inputs": [1]},
        {"Job": None},
    ],
)
def test_hostile_shapes_raise_only_the_compilers_error(data: dict[str, object]) -> None:
    with pytest.raises(SpecError) as caught:
        compile_job(data)
    assert all(p.message for p in caught.value.problems)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


def test_compile_url_fetches_over_http_and_names_the_url(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(DOCKER_JOB, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/job.yaml"
        compiled = compile_url(url)
        assert compiled.source == url
        assert compiled.job_cid == compile_document(DOCKER_JOB).job_cid
        with pytest.raises(LoadError):
            compile_url(url.replace("job.yaml", "missing.yaml"))
    finally:
        server.shutdown()
        server.server_close()


def test_duplicate_keys_are_refused_naming_both_lines() -> None:
    with pytest.raises(LoadError) as caught:
        compile_document("Type: batch\nName: a\nName: b\nTasks: []\n")
    [problem] = caught.value.problems
    assert (problem.pointer, problem.line, problem.code) == ("/Name", 3, "duplicate-key")
    assert "line 2" in problem.message


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_parsed_bodies_are_held_to_the_depth_limit() -> None:
    with pytest.raises(LoadError) as caught:
        compile_job({"Type": "batch", "Meta": _nested(200), "Tasks": []})
    [problem] = caught.value.problems
    assert problem.code == "too-deep"
    assert problem.pointer.startswith("/Meta/x/x")


def test_parsed_bodies_are_held_to_the_node_limit_even_when_they_contain_themselves() -> None:
    body: dict[str, object] = {"Type": "batch", "Tasks": []}
    body["Labels"] = body
    with pytest.raises(LoadError) as caught:
        compile_job(body, limits=LoadLimits(max_nodes=500, max_depth=1000))
    assert caught.value.problems[0].code == "too-many-nodes"


def test_null_maps_and_lists_mean_empty_as_in_go() -> None:
    nulls = "Meta: null\nLabels: ~\nConstraints: null\n" + DOCKER_JOB.replace(
        "  - Name: main\n",
        "  - Name: main\n    Env: null\n    InputSources: null\n    Network: {Domains: null}\n",
    )
    compiled = compile_document(nulls)
    assert compiled.job_cid == compile_document(DOCKER_JOB).job_cid
    assert (compiled.job["Meta"], compiled.job["Tasks"][0]["Env"]) == ({}, {})


def test_templating_is_held_to_the_size_limit_given() -> None:
    # rendering stops at the limit, before it even reaches the missing variable
    text = DOCKER_JOB.replace("hi]", "{{.big}}{{.big}}{{.missing}}]")
    with pytest.raises(LoadError) as caught:
        compile_document(text, variables={"big": "x" * 300}, limits=LoadLimits(max_bytes=600))
    assert caught.value.problems[0].code == "too-large"


def test_templating_reads_bytes_through_the_loaders_encoding_checks() -> None:
    with pytest.raises(LoadError) as caught:
        compile_document(b"Name: caf\xe9\nType: batch\n", variables={})
    problem = caught.value.problems[0]
    assert (problem.code, problem.line, problem.column) == ("encoding", 1, 10)


def test_the_front_end_on_the_public_face_composes_into_the_compiler(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(DOCKER_JOB.replace("ubuntu:24.04", "{{.image}}"), encoding="utf-8")
    variables = variables_from(["image=alpine:3"])
    data, name = read_source(str(path), limits=DEFAULT_LIMITS)
    document = load_document(render(data.decode(), variables), source=name)
    by_hand = compile_job(document.data, source=name)
    assert by_hand.job_cid == compile_path(path, variables=variables).job_cid
    assert by_hand.job_cid == cid_of(by_hand.job)
    assert by_hand.job["Tasks"][0]["Resources"]["CPU"] == format_cpu(parse_cpu("0.5"))
