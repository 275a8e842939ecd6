"""The loader: plain data, a position for every pointer, and a clear LoadError for bad input."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from klippfisk.spec.errors import LoadError
from klippfisk.spec.load import Document, LoadLimits, load_document, pointer_join

CORPUS = Path(__file__).parents[2] / "data" / "corpus"
EMPTY_FILES = {"HEAD__testdata__jobs__empty.yaml", "v1.0.0__testdata__empty.yaml"}

JOB_YAML = """\
Name: where-is-it
Type: batch
Tasks:
  - Name: first
    Engine: {Type: wasm,
      Params: {
        EntryModule: m.wasm}}
    Resources: {CPU: 500m, Memory: 1Gb}
"""


def pointers(value: Any, prefix: str = "") -> Iterator[str]:
    """Every JSON pointer into `value`, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from pointers(item, pointer_join(prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from pointers(item, pointer_join(prefix, index))


def problem_of(excinfo: pytest.ExceptionInfo[LoadError]) -> Any:
    assert len(excinfo.value.problems) == 1
    return excinfo.value.problems[0]


# -- what users rely on: data and positions ----------------------------------------------


def test_yaml_job_loads_as_plain_data_with_positions_of_keys_and_items() -> None:
    doc = load_document(JOB_YAML, source="job.yaml")
    assert doc.format == "yaml" and doc.source == "job.yaml"
    assert doc.data["Tasks"][0]["Engine"]["Params"] == {"EntryModule": "m.wasm"}
    assert doc.positions[""] == (1, 1)
    assert doc.positions["/Type"] == (2, 1)
    assert doc.positions["/Tasks/0"] == (4, 5)
    assert doc.positions["/Tasks/0/Engine/Params/EntryModule"] == (7, 9)
    assert doc.positions["/Tasks/0/Resources/Memory"] == (8, 28)


def test_json_job_positions_point_at_keys_and_array_items() -> None:
    text = '{\n  "Name": "x",\n  "Tasks": [\n    {"Name": "main"}\n  ],\n  "a/b~c": 1\n}\n'
    doc = load_document(text.encode())
    assert doc.format == "json"
    assert doc.positions["/Name"] == (2, 3)
    assert doc.positions["/Tasks/0"] == (4, 5)
    assert doc.positions["/Tasks/0/Name"] == (4, 6)
    assert doc.positions["/a~1b~0c"] == (6, 3)
    assert set(doc.positions) == set(pointers(doc.data))


def test_position_falls_back_to_the_nearest_written_ancestor() -> None:
    doc = load_document(JOB_YAML)
    assert doc.position("/Tasks/0/Timeouts/ExecutionTimeout") == doc.positions["/Tasks/0"]
    assert doc.position("/Nowhere") == (1, 1)


def test_json_numbers_keep_json_meaning_not_yaml_1_1() -> None:
    # YAML 1.1 reads 1e5 as text; a JSON document means the number
    assert load_document('{"n": 1e5, "i": 10}').data == {"n": 100000.0, "i": 10}


def test_yaml_keys_stay_as_written_and_timestamps_stay_text() -> None:
    doc = load_document("yes: on\n1: 2024-01-02\nnull: ~\n")
    assert doc.data == {"yes": True, "1": "2024-01-02", "null": None}


def test_yaml_flow_mapping_that_is_not_json_is_read_as_yaml() -> None:
    doc = load_document("{Name: hello, Count: 1}")
    assert doc.format == "yaml" and doc.data == {"Name": "hello", "Count": 1}


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert load_document(b"\xef\xbb\xbfName: x\n").data == {"Name": "x"}


def test_anchors_aliases_and_merge_keys_expand_with_own_keys_winning() -> None:
    text = "base: &b {CPU: 1, Memory: 2}\nuse:\n  <<: *b\n  Memory: 3\nagain: *b\n"
    doc = load_document(text)
    assert doc.data["use"] == {"CPU": 1, "Memory": 3}
    assert doc.data["again"] == {"CPU": 1, "Memory": 2}
    assert doc.positions["/use/Memory"] == (4, 3)
    assert doc.positions["/use/CPU"] == (1, 11)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.y*ml")) + sorted(CORPUS.glob("*.json")),
                         ids=lambda p: p.name)  # fmt: skip
def test_every_bacalhau_corpus_file_loads_with_a_position_for_every_pointer(path: Path) -> None:
    if path.name in EMPTY_FILES:
        with pytest.raises(LoadError, match="the document is empty"):
            load_document(path.read_bytes(), source=path.name)
        return
    doc = load_document(path.read_bytes(), source=path.name)
    assert isinstance(doc.data, dict)
    assert all(doc.positions.get(p) for p in pointers(doc.data))


# -- bad input: a clear LoadError, located -----------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n"])
def test_empty_document_is_refused(text: str) -> None:
    with pytest.raises(LoadError, match="the document is empty") as excinfo:
        load_document(text)
    assert problem_of(excinfo).code == "empty"


def test_yaml_duplicate_key_names_both_lines() -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document("Name: a\nType: batch\nName: b\n")
    problem = problem_of(excinfo)
    assert (problem.pointer, problem.code, problem.line) == ("/Name", "duplicate-key", 3)
    assert "line 1 and on line 3" in problem.message


def test_json_duplicate_keys_are_all_reported_with_both_lines() -> None:
    text = '{\n "a": 1,\n "b": {"x": 1,\n  "x": 2},\n "a": 3\n}'
    with pytest.raises(LoadError) as excinfo:
        load_document(text)
    found = {(p.pointer, p.line) for p in excinfo.value.problems}
    assert found == {("/b/x", 4), ("/a", 5)}
    assert "line 2 and on line 5" in str(excinfo.value)


def test_size_limit_is_checked_before_parsing() -> None:
    limits = LoadLimits(max_bytes=100)
    with pytest.raises(LoadError) as excinfo:
        load_document(b"{" * 101, limits=limits)  # would be a syntax error if parsed
    assert problem_of(excinfo).code == "too-large"
    assert load_document("a: " + "x" * 90, limits=limits).data == {"a": "x" * 90}


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # JSON path; would overflow the C parser's stack
        "a: " + "[" * 100_000 + "]" * 100_000,  # YAML path, same
        "- " * 100_000 + "x",  # compact block sequences on one line, same
        '{"a":' * 70 + "1" + "}" * 70,
        "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 70)),
    ],
    ids=["json-100k", "yaml-flow-100k", "yaml-compact-100k", "json-70", "yaml-block-70"],
)
def test_deep_nesting_is_a_load_error_not_a_crash(text: str) -> None:
    # Whichever stops first, our limit or the parser's own (the libyaml in PyYAML 6.0.4 refuses
    # past 1000 levels, and its scanner may get there before our check sees level 65), the
    # author gets one LoadError: ours names the limit, a parser's refusal is located.
    with pytest.raises(LoadError) as caught:
        load_document(text)
    problem = problem_of(caught)
    if problem.code == "too-deep":
        assert "nests deeper than 64 levels" in problem.message
    else:
        assert (problem.code, problem.pointer) == ("syntax", "")
        assert problem.line is not None and problem.column is not None


def test_nesting_up_to_the_limit_is_fine() -> None:
    text = "[" * 63 + "1" + "]" * 63
    assert load_document(text).data is not None
    assert load_document("a: " + text).data is not None


def verdict(text: str) -> str:
    """ "ok", or the code of the single problem the loader reports."""
    try:
        load_document(text)
    except LoadError as exc:
        return str(exc.problems[0].code)
    return "ok"


@pytest.mark.parametrize(("levels", "expected"), [(64, "ok"), (65, "too-deep")])
def test_depth_verdict_is_the_same_for_big_documents_checked_by_events(
    levels: int, expected: str
) -> None:
    small = "a: " + "[" * levels + "]" * levels + "\n"
    big = small + "".join(f"k{i}: [1]\n" for i in range(3000))  # many brackets: event check
    assert verdict(small) == verdict(big) == expected


def billion_laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_before_expanding() -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document(billion_laughs(9))  # 81 alias uses, 9**9 values
    problem = problem_of(excinfo)
    assert problem.code == "too-many-nodes" and problem.line is not None


def test_alias_uses_are_counted() -> None:
    text = "a: &a x\n" + "".join(f"k{i}: *a\n" for i in range(101))
    with pytest.raises(LoadError, match="more than 100 aliases"):
        load_document(text)
    assert load_document(text, limits=LoadLimits(max_aliases=101)).data["k100"] == "x"


def test_node_limit_applies_to_plain_documents_too() -> None:
    limits = LoadLimits(max_nodes=10)
    with pytest.raises(LoadError, match="more than 10 values"):
        load_document("[" + ",".join(["1"] * 20) + "]", limits=limits)
    with pytest.raises(LoadError, match="more than 10 values"):
        load_document("- 1\n" * 20, limits=limits)


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(LoadError, match="alias refers to the node that contains it"):
        load_document("a: &a [1, *a]\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: !!binary aGVsbG8=\n", "tag:yaml.org,2002:binary"),
        ("a: !!python/object:os.system {}\n", "python/object"),
        ("a: !custom x\n", "!custom"),
        ("a: !!set {x, y}\n", "tag:yaml.org,2002:set"),
    ],
)
def test_non_json_yaml_tags_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document(text)
    problem = problem_of(excinfo)
    assert problem.code == "tag" and fragment in problem.message
    assert (problem.pointer, problem.line) == ("/a", 1)


@pytest.mark.parametrize("text", ["a: .inf\n", "a: .nan\n", "[NaN]", '{"a": 1e400}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(LoadError, match="finite|not a JSON number|too large"):
        load_document(text)


def test_explicit_tag_with_wrong_value_is_refused() -> None:
    with pytest.raises(LoadError, match="not a valid int"):
        load_document("a: !!int twelve\n")


def test_yaml_syntax_error_is_located() -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document("Name: x\nTasks: [a, b\nType: batch\n")
    problem = problem_of(excinfo)
    assert problem.code == "syntax" and problem.message.startswith("invalid YAML")
    assert problem.line == 3


def test_json_syntax_error_is_reported_as_json_with_line_and_column() -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document('{\n  "Name": "x",\n  "Type" "batch"\n}')
    problem = problem_of(excinfo)
    assert problem.message.startswith("invalid JSON")
    assert (problem.line, problem.column) == (3, 10)


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("Name: a\n---\nName: b\n", "more than one YAML document", 2),
        ("Name: a\nTasks: *tasks\n", "anchor (&name) that is not defined", 2),
        ("a: &x 1\nb: &x 2\n", "anchor (&name) is defined twice", 2),
        ("Name: a\nTasks:\n\t- b\n", "tab is used for indentation", 3),
    ],
)
def test_common_yaml_mistakes_get_plain_messages(text: str, fragment: str, line: int) -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document(text)
    problem = problem_of(excinfo)
    assert fragment in problem.message and problem.line == line and problem.hint


@pytest.mark.parametrize(
    ("data", "code", "where"),
    [
        (b"Name: a\nType: \xff\n", "encoding", (2, 7)),
        (b"Name: a\x00\n", "binary", (1, 8)),
        ("Name: a\nb: \ud800\n", "encoding", (2, 4)),
        ("Name: a\n".encode("utf-16"), "encoding", None),
        (b"Name: \x01\n", "syntax", (1, 7)),
    ],
    ids=["not-utf8", "nul", "lone-surrogate", "utf16", "control-char"],
)
def test_encoding_problems_are_located(data: bytes | str, code: str, where: Any) -> None:
    with pytest.raises(LoadError) as excinfo:
        load_document(data)
    problem = problem_of(excinfo)
    assert problem.code == code
    if where is not None:
        assert (problem.line, problem.column) == where


def test_complex_keys_are_refused() -> None:
    with pytest.raises(LoadError, match="key is a list or mapping"):
        load_document("? [a, b]\n: c\n")


# -- properties ----------------------------------------------------------------------------


def documents(chars: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON-shaped documents (a mapping or a list at the top) spelled with `chars`."""
    text = st.text(chars, max_size=20)
    keys = st.text(chars, max_size=8)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=25,
    )
    return st.dictionaries(keys, values, max_size=5) | st.lists(values, max_size=5)


json_documents = documents(st.characters(exclude_categories=["Cs"]))
# PyYAML's emitter (not the loader) writes YAML 1.1 line breaks unquoted in keys; keep them
# out of the data it is asked to dump
yaml_documents = documents(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x85\u2028\u2029")
)


def assert_same(a: Any, b: Any) -> None:
    """Equality that treats -0.0 and 0.0 apart only as JSON would (it does not)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == b or (math.isnan(a) and math.isnan(b))
    else:
        assert a == b


@given(json_documents, st.sampled_from([None, 2]))
def test_json_round_trips_with_a_position_for_every_pointer(data: Any, indent: int | None) -> None:
    doc = load_document(json.dumps(data, indent=indent))
    assert_same(doc.data, data)
    assert all(doc.positions.get(p) for p in pointers(data))


@given(yaml_documents)
def test_yaml_and_json_of_the_same_data_load_the_same(data: Any) -> None:
    from_yaml = load_document(yaml.safe_dump(data, allow_unicode=True))
    from_json = load_document(json.dumps(data, ensure_ascii=False))
    assert from_yaml.data == from_json.data == data
    assert set(from_yaml.positions) >= set(pointers(data))


@given(st.binary(max_size=200))
def test_junk_bytes_raise_nothing_but_load_error(junk: bytes) -> None:
    try:
        doc = load_document(junk)
    except LoadError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
    else:
        assert isinstance(doc, Document)


@given(st.text(alphabet="{}[]:,-&*!|>'\"# \n\tab1.", max_size=60))
def test_yaml_punctuation_soup_raises_nothing_but_load_error(text: str) -> None:
    with contextlib.suppress(LoadError):
        load_document(text)


def test_positions_follow_merges_in_order_like_the_data() -> None:
    text = (
        "a: &a {X: 1, Y: 1}\n"
        "b: &b {X: 2, Z: 2}\n"
        "both:\n"
        "  <<: [*a, *b]\n"
        "  Y: 3\n"
        "deep:\n"
        "  <<: {<<: *b, W: 4}\n"
    )
    doc = load_document(text)
    assert doc.data["both"] == {"X": 1, "Z": 2, "Y": 3}
    assert doc.positions["/both/X"] == (1, 8)  # the first merged map wins, as in the data
    assert doc.positions["/both/Z"] == (2, 14)
    assert doc.positions["/both/Y"] == (5, 3)  # own keys win
    assert doc.data["deep"] == {"X": 2, "Z": 2, "W": 4}
    assert doc.positions["/deep/Z"] == (2, 14)
    assert set(doc.positions) == set(pointers(doc.data))
    assert "/both/Q" not in doc.positions and "/a/X/0" not in doc.positions


def test_a_byte_order_mark_is_dropped_and_does_not_shift_a_bad_bytes_place() -> None:
    assert load_document(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}
    with pytest.raises(LoadError) as caught:
        load_document(b"\xef\xbb\xbfa: \xff\n")
    problem = caught.value.problems[0]
    assert "byte 0xff is not valid UTF-8" in problem.message
    assert (problem.line, problem.column) == (1, 7)  # columns count bytes, the BOM's too


@pytest.mark.parametrize(
    ("text", "nodes", "depth", "refusal"),
    [
        (b"a: x\nb: y\n", 3, 64, None),
        (b"a: x\nb: y\n", 2, 64, ("too-many-nodes", "/b", 2, 1)),
        (b"- x\n- y\n- z\n", 3, 64, ("too-many-nodes", "/2", 3, 3)),
        (b"a: {b: x}\n", 64, 1, ("too-deep", "/a/b", 1, 5)),
        (b"a: [x]\n", 64, 1, ("too-deep", "/a/0", 1, 5)),
    ],
)
def test_plain_text_values_count_against_the_limits_where_they_are_written(
    text: bytes, nodes: int, depth: int, refusal: tuple[str, str, int, int] | None
) -> None:
    limits = LoadLimits(max_nodes=nodes, max_depth=depth)
    if refusal is None:
        assert load_document(text, limits=limits).data == {"a": "x", "b": "y"}
        return
    with pytest.raises(LoadError) as caught:
        load_document(text, limits=limits)
    problem = caught.value.problems[0]
    assert (problem.code, problem.pointer, problem.line, problem.column) == refusal
