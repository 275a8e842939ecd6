"""Properties of the compiler: idempotent, spelling-blind, meaning-sensitive, and it never
raises anything but its own error type."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from klippfisk.spec import SpecError, compile_document, compile_job

NAMES = st.text(alphabet="abcdefghij-", min_size=1, max_size=12)
ENV = st.dictionaries(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True).filter(
        lambda n: not n.startswith("BACALHAU")
    ),
    st.text(alphabet="xyz019 ", min_size=1, max_size=5),
    max_size=3,
)


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job, with its quantities still as numbers (spelled out by `_spell`)."""
    return {
        "Name": draw(NAMES),
        "Type": draw(st.sampled_from(["batch", "service", "ops", "daemon"])),
        "Labels": draw(st.dictionaries(NAMES, NAMES, max_size=3)),
        "Tasks": [
            {
                "Name": "main",
                "Engine": {
                    "Type": "docker",
                    "Params": {
                        "Image": draw(NAMES),
                        "Parameters": draw(st.lists(NAMES, max_size=3)),
                    },
                },
                "Env": draw(ENV),
                "Resources": {
                    "CPU": draw(st.integers(1, 64_000)),
                    "Memory": draw(st.integers(1, 4096)),
                },
            }
        ],
    }


def _spell(job: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same job with quantities written in one of their equivalent spellings."""
    spelled = json.loads(json.dumps(job))
    resources = spelled["Tasks"][0]["Resources"]
    millicores, mebibytes = resources["CPU"], resources["Memory"]
    cpus = [f"{millicores}m"] + ([str(millicores // 1000)] if millicores % 1000 == 0 else [])
    resources["CPU"] = rng.choice(cpus)
    resources["Memory"] = rng.choice([f"{mebibytes}Mi", str(mebibytes * 2**20), f"{mebibytes} MiB"])
    return spelled


def _shuffle_and_recase(value: Any, rng: random.Random, free: bool = False) -> Any:
    """Reorder every map and re-case every model key (not the keys of free-form maps)."""
    if isinstance(value, list):
        return [_shuffle_and_recase(v, rng) for v in value]
    if not isinstance(value, dict):
        return value
    items = list(value.items())
    rng.shuffle(items)
    out = {}
    for key, child in items:
        new_key = key if free else rng.choice([key, key.lower(), key.upper()])
        out[new_key] = _shuffle_and_recase(
            child, rng, free=key in ("Labels", "Env", "Params", "Meta")
        )
    return out


@given(jobs(), st.randoms(use_true_random=False))
def test_spelling_key_order_case_and_format_do_not_change_the_cid(
    job: dict[str, Any], rng: random.Random
) -> None:
    reference = compile_job(_spell(job, rng))
    as_yaml = yaml.safe_dump(_shuffle_and_recase(_spell(job, rng), rng))
    as_json = json.dumps(_shuffle_and_recase(_spell(job, rng), rng))
    assert compile_document(as_yaml).job_cid == reference.job_cid
    assert compile_document(as_json).job_cid == reference.job_cid


@given(jobs())
def test_compiling_a_canonical_job_again_changes_nothing(job: dict[str, Any]) -> None:
    once = compile_job(job)
    twice = compile_document(yaml.safe_dump(once.job))
    assert (twice.job, twice.job_cid, twice.task_cids) == (once.job, once.job_cid, once.task_cids)


@given(jobs(), st.sampled_from(["image", "cpu", "env", "type"]))
def test_a_different_meaning_gives_a_different_cid(job: dict[str, Any], change: str) -> None:
    other = json.loads(json.dumps(job))
    task = other["Tasks"][0]
    if change == "image":
        task["Engine"]["Params"]["Image"] += "x"
    elif change == "cpu":
        task["Resources"]["CPU"] += 1
    elif change == "env":
        task["Env"]["ZZZZZZZZ"] = "1"
    else:
        other["Type"] = "batch" if job["Type"] != "batch" else "service"
    assert compile_job(job).job_cid != compile_job(other).job_cid


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Type",
                    "Tasks",
                    "Engine",
                    "Params",
                    "Name",
                    "image",
                    "Spec",
                    "APIVersion",
                    "with",
                    "do",
                    "inputs",
                    "meta",
                    "Resources",
                    "CPU",
                    "Network",
                    "Ports",
                    "Timeouts",
                    "Env",
                    "InputSources",
                    "Source",
                    "wasm",
                    "language",
                    "code",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(JSONISH)
def test_arbitrary_data_raises_only_the_compilers_error(data: Any) -> None:
    with contextlib.suppress(SpecError):
        compile_job(data if isinstance(data, dict) else {"Job": data})


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_raise_only_the_compilers_error(data: bytes | str) -> None:
    with contextlib.suppress(SpecError):
        compile_document(data)


# Targeted junk: the shapes that overflow a naive parser. Random JSON almost never spells a
# number past float64 or int()'s 4300-digit guard, or a broken template escape, so these
# strategies do, on purpose.
DIGIT_RUNS = st.integers(0, 10**6).map(str) | st.integers(300, 6000).map(lambda n: "9" * n)
QUANTITY_TEXTS = st.builds(
    lambda *parts: "".join(parts),
    st.sampled_from(["", "-", "+"]),
    DIGIT_RUNS,
    st.sampled_from(["", ".", ".5"]),
    st.just("") | st.integers(-500, 500).map(lambda e: f"e{e}"),
    st.sampled_from(["", "m", "k", "Gi", "GB", "s", "h", "ms", "1h30m"]),
)
QUANTITIES = (
    QUANTITY_TEXTS
    | st.integers()
    | st.floats()
    | st.integers(300, 6000).map(lambda n: 10**n)
    | st.integers(300, 6000).map(lambda n: -(10**n))
)
SLOTS = st.sampled_from(
    [
        ("Resources", "CPU"),
        ("Resources", "Memory"),
        ("Resources", "Disk"),
        ("Resources", "GPU"),
        ("Timeouts", "ExecutionTimeout"),
        ("Timeouts", "QueueTimeout"),
        ("Timeouts", "TotalTimeout"),
    ]
)
MINIMAL_KEYS = {"CPU": "cpu", "Memory": "memory", "Disk": "disk", "GPU": "gpu"}


def _forms(group: str, name: str, value: Any) -> list[dict[str, Any]]:
    """The same quantity in a current job, a legacy V1beta1 spec and a minimal document."""
    current = {"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}
    current["Tasks"][0][group] = {name: value}
    legacy_spec: dict[str, Any] = {"Engine": "Docker", "Docker": {"Image": "u"}}
    if group == "Resources":
        legacy_spec["Resources"] = {name: value}
    else:
        legacy_spec["Timeout"] = value
    minimal = {"image": "u", "command": ["true"], MINIMAL_KEYS.get(name, "timeout"): value}
    return [current, {"APIVersion": "V1beta1", "Spec": legacy_spec}, minimal]


@given(SLOTS, QUANTITIES)
def test_any_quantity_in_any_form_raises_only_the_compilers_error(
    slot: tuple[str, str], value: Any
) -> None:
    for form in _forms(*slot, value):
        with contextlib.suppress(SpecError):
            compile_job(form)
        if isinstance(value, str):  # also as written text, unquoted so YAML reads it as it likes
            text = json.dumps(form).replace(json.dumps(value), value)
            with contextlib.suppress(SpecError):
                compile_document(yaml.safe_dump(yaml.safe_load(text)) if text[0] == "{" else text)


@given(
    st.sampled_from(['"Count": {}', '"Priority": {}', '"Meta": {{"a": [{}]}}', '"x": {}']),
    st.sampled_from(["", "-"]),
    st.integers(4000, 6000),
)
def test_json_integers_of_any_length_raise_only_the_compilers_error(
    where: str, sign: str, digits: int
) -> None:
    text = '{"Type": "batch", ' + where.format(sign + "7" * digits) + "}"
    with contextlib.suppress(SpecError):
        compile_document(text)


ESCAPES = st.lists(
    st.builds(
        lambda kind, rest: "\\" + kind + rest,
        st.sampled_from(list("xuU01234567ntq\\")),
        st.text(alphabet="0123456789abcdefABCDEFgz", max_size=9),
    ),
    min_size=1,
    max_size=3,
).map("".join)


@given(ESCAPES)
def test_template_strings_with_any_escape_raise_only_the_compilers_error(escapes: str) -> None:
    text = 'Type: batch\nName: "{{ or .missing "' + escapes + '" }}"\n'
    with contextlib.suppress(SpecError):
        compile_document(text, variables={})
