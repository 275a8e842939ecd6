"""Templating: the Go text/template subset `bacalhau job run` documents, and its variables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klippfisk.spec.errors import LoadError, TemplateError
from klippfisk.spec.load import LoadLimits, load_document
from klippfisk.spec.template import render, variables_from

VARIABLES = {"image": "ubuntu:24.04", "empty": "", "s3-bucket": "my-bucket", "query": 'a "b"'}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Image: {{.image}}", "Image: ubuntu:24.04"),
        ("Image: {{ .image }}", "Image: ubuntu:24.04"),
        ('Bucket: {{ index . "s3-bucket" }}', "Bucket: my-bucket"),
        ('Limit: {{ or .limit "10" }}', "Limit: 10"),
        ('Limit: {{ or (index . "limit") "10" }}', "Limit: 10"),
        ('Value: {{ or .empty "fallback" }}', "Value: fallback"),
        ('Value: {{ or .image "fallback" }}', "Value: ubuntu:24.04"),
        ("Raw: {{ or .limit `a\\n` }}", "Raw: a\\n"),
        ('Esc: {{ or .limit "tab\\there" }}', "Esc: tab\there"),
        ("a:  {{- .image -}}  ;", "a:ubuntu:24.04;"),
        ("{{/* a comment */}}x", "x"),
        ("Query: '{{.query}}'", "Query: 'a \"b\"'"),
        ("Empty: [{{.empty}}]", "Empty: []"),
        ("closing }} alone is text", "closing }} alone is text"),
    ],
)
def test_documented_forms_render(text: str, expected: str) -> None:
    assert render(text, VARIABLES) == expected


def test_rendered_job_loads() -> None:
    text = 'Name: {{.name}}\nTasks:\n  - Name: main\n    Image: {{ or .image "ubuntu" }}\n'
    doc = load_document(render(text, {"name": "nightly"}))
    assert doc.data == {"Name": "nightly", "Tasks": [{"Name": "main", "Image": "ubuntu"}]}


def test_every_missing_key_is_reported_with_its_line() -> None:
    text = 'Name: {{.name}}\nType: batch\nImage: {{ index . "image-ref" }}\n'
    with pytest.raises(TemplateError) as excinfo:
        render(text, {}, source="job.yaml")
    problems = excinfo.value.problems
    assert [(p.line, p.column) for p in problems] == [(1, 7), (3, 8)]
    assert "'name'" in problems[0].message and "'image-ref'" in problems[1].message
    assert "-V name=value" in problems[0].hint
    assert excinfo.value.source == "job.yaml"


@pytest.mark.parametrize(
    "text",
    [
        "{{if .image}}x{{end}}",
        "{{range .items}}{{.}}{{end}}",
        '{{.image | printf "%s"}}',
        '{{ printf "%s" .image }}',
        "{{ $x := 1 }}",
        "{{ .a.b }}",
        "{{ . }}",
        '{{ index .image "x" }}',
        "{{ 42 }}",
        "{{ or }}",
        '{{ "bad \\q escape" }}',
        '{{ "\\U0011ffff" }}',
        "{{ or " + "(" * 5000 + ".image" + ")" * 5000 + " }}",
    ],
)
def test_unsupported_actions_are_refused(text: str) -> None:
    with pytest.raises(TemplateError) as excinfo:
        render(text, {"image": "x", "items": "y"})
    assert all(p.code == "template" and p.hint for p in excinfo.value.problems)


def test_rendered_text_is_held_to_the_size_limit() -> None:
    limits = LoadLimits(max_bytes=1000)
    text = "{{.big}}\n" * 20
    assert len(render(text, {"big": "x" * 40}, limits=limits)) == 820
    with pytest.raises(LoadError, match="larger than the 1000 byte limit"):
        render(text, {"big": "x" * 100}, limits=limits)
    with pytest.raises(LoadError, match="larger than the 1000 byte limit"):
        render("x" * 1001, {}, limits=limits)


def test_a_runaway_file_lists_at_most_fifty_problems() -> None:
    with pytest.raises(TemplateError) as excinfo:
        render("{{.missing}}" * 500, {})
    assert len(excinfo.value.problems) == 50


def test_unclosed_action_is_refused() -> None:
    with pytest.raises(TemplateError, match="never closed"):
        render("Name: x\nImage: {{ .image\n", VARIABLES)


@given(st.text(alphabet='{}()."`\\-/* abcdeinorx', max_size=60))
def test_any_template_text_renders_or_raises_a_template_error(text: str) -> None:
    try:
        assert isinstance(render(text, {"a": "1", "b": ""}), str)
    except TemplateError as exc:
        assert all(p.line and p.hint for p in exc.problems)


@given(st.text(max_size=200).filter(lambda t: "{{" not in t))
def test_text_without_actions_passes_through_untouched(text: str) -> None:
    assert render(text, {}) == text


def test_variables_pairs_win_over_matching_environment() -> None:
    environ = {"JOB_REGION": "eu", "JOB_SIZE": "big", "HOME": "/root"}
    found = variables_from(["JOB_SIZE=small", "eq=a=b"], "^JOB_", environ)
    assert found == {"JOB_REGION": "eu", "JOB_SIZE": "small", "eq": "a=b"}


def test_environment_pattern_star_means_every_variable() -> None:
    assert variables_from([], "*", {"A": "1", "B": "2"}) == {"A": "1", "B": "2"}


def test_environment_pattern_matches_anywhere_in_the_name_as_go_does() -> None:
    assert variables_from([], "REGION", {"MY_REGION_X": "1", "OTHER": "2"}) == {"MY_REGION_X": "1"}


def test_no_pattern_takes_nothing_from_the_environment() -> None:
    assert variables_from(["a=1"], None, {"B": "2"}) == {"a": "1"}


@pytest.mark.parametrize(("pairs", "pattern"), [(["novalue"], None), (["=x"], None), ([], "(")])
def test_bad_variables_are_template_errors(pairs: list[str], pattern: str | None) -> None:
    with pytest.raises(TemplateError) as excinfo:
        variables_from(pairs, pattern, {})
    assert excinfo.value.problems[0].hint


@pytest.mark.parametrize("escape", ["\\u00zz", "\\x", "\\xg1", "\\U0000", "\\u"])
def test_a_short_or_non_hex_escape_is_a_template_error_on_its_line(escape: str) -> None:
    text = 'Type: batch\nName: "{{ or .name "' + escape + '" }}"\n'
    with pytest.raises(TemplateError) as excinfo:
        render(text, {})
    problem = excinfo.value.problems[0]
    assert (problem.line, problem.code) == (2, "template")
    assert "not a valid escape" in problem.message and "hex digits" in problem.hint
