"""Content addresses: RFC 8785 bytes and CIDv1 (json codec, sha2-256, base32 lower)."""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multihash

from klippfisk.spec import SpecError, compile_job
from klippfisk.spec.address import canonical_bytes, cid_of
from klippfisk.spec.canonical import TASK_CID_FIELDS, addresses
from klippfisk.spec.load import load_document

JOB = {"Name": "hello", "Type": "batch", "Tasks": [{"Name": "main", "Env": {"B": "2", "A": "1"}}]}


def json_like(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nested lists and text-keyed maps over `scalars`."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )


plain_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=10)
)
float_free = json_like(plain_scalars)
any_json = json_like(plain_scalars | st.floats(allow_nan=False, allow_infinity=False))


def test_cid_is_cidv1_json_sha256_over_the_canonical_bytes() -> None:
    cid = cid_of(JOB)
    assert cid.startswith("bagaaiera")
    decoded = CID.decode(cid)
    assert decoded.version == 1
    assert decoded.codec.name == "json" and decoded.codec.code == 0x0200
    assert decoded.hashfun.name == "sha2-256"
    assert bytes(decoded.raw_digest) == hashlib.sha256(canonical_bytes(JOB)).digest()
    assert cid == decoded.encode("base32")


def test_canonical_bytes_sort_keys_and_drop_whitespace() -> None:
    assert canonical_bytes({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'.encode()


def test_keys_sort_by_utf16_code_units_as_rfc8785_requires() -> None:
    # U+1F600 is a surrogate pair in UTF-16 (D83D...), so it sorts before U+E000
    data = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_bytes(data) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_numbers_are_written_as_rfc8785_numbers() -> None:
    assert canonical_bytes({"a": 1.0, "b": 1e21, "c": 0.1}) == b'{"a":1,"b":1e+21,"c":0.1}'


@pytest.mark.parametrize("value", [2**53, float("nan"), {1: "non-text key"}, {"a": object()}])
def test_what_json_cannot_say_exactly_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="canonical JSON"):
        canonical_bytes(value)


def test_same_meaning_in_different_spellings_has_the_same_cid() -> None:
    escaped = load_document('{"Name": "caf\\u00e9", "Count": 1}').data
    literal = load_document("Count: 1\nName: café\n").data
    assert cid_of(escaped) == cid_of(literal)
    assert cid_of(literal) != cid_of({**literal, "Count": 2})


@given(any_json)
def test_cid_text_matches_the_multiformats_reference(data: Any) -> None:
    digest = multihash.digest(canonical_bytes(data), "sha2-256")
    assert cid_of(data) == str(CID("base32", 1, "json", digest))


@given(float_free)
def test_fast_path_matches_the_rfc8785_reference(data: Any) -> None:
    assert canonical_bytes(data) == rfc8785.dumps(data)


@given(any_json)
def test_canonical_bytes_always_match_the_reference(data: Any) -> None:
    assert canonical_bytes(data) == rfc8785.dumps(data)


@given(st.dictionaries(st.text(max_size=6), float_free, min_size=2, max_size=8), st.randoms())
def test_cid_is_stable_under_key_reordering(data: dict[str, Any], rng: random.Random) -> None:
    items = list(data.items())
    rng.shuffle(items)
    assert cid_of(dict(items)) == cid_of(data)


ODD_PARAMS = st.dictionaries(
    st.text(max_size=4) | st.sampled_from(["\ue000", "\U0001f600", "Image"]),
    json_like(
        plain_scalars
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(2**60), 2**60)
    ),
    max_size=4,
)


CANONICAL = compile_job(
    {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "flibble"}}]}
).job


@given(ODD_PARAMS, st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3))
def test_one_pass_addresses_equal_hashing_job_and_task_on_their_own(
    params: dict[str, Any], texts: dict[str, str]
) -> None:
    """The compiler hashes job and tasks from one pass; the addresses must be those of the
    whole canonical job and of each task's runnable fields, whatever the free parts hold."""
    job = copy.deepcopy(CANONICAL)
    job["Meta"] = job["Labels"] = texts
    task = job["Tasks"][0]
    task["Meta"] = task["Env"] = texts
    task["Engine"]["Params"] = task["Publisher"]["Params"] = params
    task["InputSources"] = [
        {"Source": {"Type": "s", "Params": params}, "Alias": "", "Target": "/i"}
    ]
    task["ResultPaths"] = [{"Name": name, "Path": "/o"} for name in texts.values()]
    run = {name: task[name] for name in TASK_CID_FIELDS}
    try:
        expected = cid_of(job), {"main": cid_of(run)}
    except ValueError:
        with pytest.raises(ValueError, match="canonical JSON"):
            addresses(job)
        return
    assert addresses(job) == expected


def test_a_lone_surrogate_in_a_param_is_an_error_not_a_crash() -> None:
    with pytest.raises(SpecError) as caught:
        compile_job({"Type": "batch", "Tasks": [{"Name": "m", "Engine": {"Type": "noop",
                     "Params": {"x": "\ud800"}}}]})  # fmt: skip
    assert caught.value.problems[0].code == "unaddressable"


LONG_TEXTS = st.text(min_size=1, max_size=6) | st.sampled_from(
    ["AGFzbQEA+/", 'a"b', "a\\b", "line\n", "\r\n\t", "\x08\x0c", "\x7f", "\x00", "é", "😀"]
)


@given(LONG_TEXTS)
def test_long_texts_in_params_are_addressed_as_the_reference_writes_them(piece: str) -> None:
    """Long text (an inline module, a script) takes a faster escaping path; its bytes must
    still be RFC 8785's, whatever the text holds: quotes, backslashes, control characters,
    DEL or non-ASCII, in the job text and in the task text alike."""
    text = piece * (5000 // len(piece))
    job = copy.deepcopy(CANONICAL)
    task = job["Tasks"][0]
    task["Engine"]["Params"] = {"Module": text, "Short": piece}
    task["Publisher"]["Params"] = {"Script": text}
    run = {name: task[name] for name in TASK_CID_FIELDS}
    job_cid, task_cids = addresses(job)
    reference = multihash.digest(rfc8785.dumps(job), "sha2-256")
    assert job_cid == str(CID("base32", 1, "json", reference))
    assert task_cids == {"main": cid_of(run)}
    assert canonical_bytes(run) == rfc8785.dumps(run)
