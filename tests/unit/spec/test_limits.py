"""Parsed data (HTTP bodies) is held to the depth and node limits, exactly at the bounds,
and a refusal names the first place a depth-first reading crosses one."""

from __future__ import annotations

from typing import Any

import pytest

from klippfisk.spec.errors import LoadError
from klippfisk.spec.limits import LoadLimits, check_shape

LIMITS = LoadLimits(max_nodes=10, max_depth=3)


def _refusal(data: Any) -> tuple[str, str]:
    with pytest.raises(LoadError) as caught:
        check_shape(data, LIMITS, "body")
    problem = caught.value.problems[0]
    return problem.code, problem.pointer


@pytest.mark.parametrize(
    "data",
    [
        list(range(9)),  # the list and its nine items: ten values
        {"a": {"b": {"c": "d"}}},  # "d" sits three levels down
        {"a": [1, 2], "b": ({"c": None},), "d": ""},
    ],
)
def test_data_within_the_limits_passes(data: Any) -> None:
    check_shape(data, LIMITS, "body")


def test_one_value_too_many_is_refused_at_the_value_that_crosses_the_limit() -> None:
    assert _refusal(list(range(10))) == ("too-many-nodes", "/0")
    assert _refusal({"a": list(range(5)), "b/c": list(range(4))}) == ("too-many-nodes", "/a/1")


def test_one_level_too_deep_is_refused_at_the_deepest_value() -> None:
    assert _refusal({"a": {"b": [{"c~d": "e"}]}}) == ("too-deep", "/a/b/0/c~0d")


def test_a_mapping_that_contains_itself_many_times_over_is_refused_without_expanding() -> None:
    loop: dict[str, Any] = {}
    loop.update({str(i): loop for i in range(1000)})
    assert _refusal(loop)[0] in ("too-deep", "too-many-nodes")
    assert _refusal([loop])[0] in ("too-deep", "too-many-nodes")
