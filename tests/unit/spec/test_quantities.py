"""Quantities read as Bacalhau reads them (k8s CPU, go-humanize bytes, Go durations)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klippfisk.spec.quantities import (
    MAX_BYTES,
    MAX_GPUS,
    MAX_MILLICORES,
    MAX_SECONDS,
    format_bytes,
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_duration_seconds,
    parse_gpu,
)


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        ("500m", 500),
        ("1", 1000),
        (1, 1000),
        (0.5, 500),
        ("0.5", 500),
        ("1.5", 1500),
        (".25", 250),
        ("2000m", 2000),
        ("500M", 500),  # Bacalhau lower-cases resource text first
        (" 250 m ", 250),  # and removes spaces
        ("1e-3", 1),
        ("0.0001", 0),  # k8sresource truncates to whole millicores
        ("2.0005", 2000),
        ("0", 0),
    ],
)
def test_cpu_quantities_become_millicores(value: str | float, millicores: int) -> None:
    assert parse_cpu(value) == millicores


@pytest.mark.parametrize(
    "value", ["-1", "-5m", "abc", "1 cpu", "", "1.2.3", "1k", "100u", "1.5m", "inf", True, 1e300]
)
def test_bad_cpu_is_a_value_error_that_says_what_to_write(value: object) -> None:
    with pytest.raises(ValueError, match=r"write millicores|negative|far more"):
        parse_cpu(value)  # type: ignore[arg-type]


def test_cpu_canonical_form_is_millicores() -> None:
    assert format_cpu(parse_cpu("0.5")) == "500m"
    assert format_cpu(parse_cpu("2")) == "2000m"
    with pytest.raises(ValueError):
        format_cpu(-1)


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("2GB", 2_000_000_000),
        ("2Gi", 2 * 2**30),
        ("2GiB", 2 * 2**30),
        ("2gib", 2 * 2**30),
        ("512Mb", 512_000_000),  # humanize: "mb" is megabytes, case does not matter
        ("512mi", 512 * 2**20),
        ("1073741824", 1073741824),
        (1073741824, 1073741824),
        ("1.5GB", 1_500_000_000),
        ("100 MB", 100_000_000),
        ("1\nGB", 1_000_000_000),
        ("1k", 1000),
        ("10b", 10),
        ("8.2MB", 8199999),  # float64 arithmetic truncated, exactly as go-humanize does
        (0, 0),
        (2048.0, 2048),
    ],
)
def test_sizes_follow_go_humanize(value: str | int, count: int) -> None:
    assert parse_bytes(value) == count


def test_one_gibibyte_is_its_byte_count() -> None:
    assert parse_bytes("1Gi") == parse_bytes("1073741824") == 2**30


@pytest.mark.parametrize("value", ["-1GB", "1 XB", "GB", "1e3", "1.5.3GB", "", -5, 1.5, None, True])
def test_bad_sizes_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_bytes(value)  # type: ignore[arg-type]


def test_sizes_from_16_eib_up_are_refused() -> None:
    assert parse_bytes("15EiB") == 15 * 2**60
    with pytest.raises(ValueError, match="too large"):
        parse_bytes("16EiB")


def test_size_canonical_form_is_a_decimal_string() -> None:
    assert format_bytes(parse_bytes("1Gi")) == "1073741824"


@pytest.mark.parametrize(("value", "gpus"), [("1", 1), (2, 2), ("0", 0), (3.0, 3), (" 4 ", 4)])
def test_gpu_counts(value: str | int, gpus: int) -> None:
    assert parse_gpu(value) == gpus


@pytest.mark.parametrize("value", ["1.5", "-1", "one", 1.5, -2, True, ""])
def test_gpu_must_be_a_whole_number(value: object) -> None:
    with pytest.raises(ValueError, match="whole number|negative"):
        parse_gpu(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30),
        ("30", 30),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2000ms", 2),
        ("0", 0),
        ("+10s", 10),
        (60.0, 60),
    ],
)
def test_durations_are_whole_seconds(value: str | int, seconds: int) -> None:
    assert parse_duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["-5s", "1500ms", "5 minutes", "h", "1.5", "1d", -1, 0.5, True])
def test_bad_durations_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_seconds(value)  # type: ignore[arg-type]


cpu_texts = st.one_of(
    st.integers(0, 10**6).map(lambda n: f"{n}m"),
    st.decimals(0, 10**4, places=4).map(str),
    st.integers(0, 64),
    st.floats(0, 256, allow_nan=False),
)
size_texts = st.tuples(
    st.integers(0, 10**6), st.sampled_from(["", "b", "k", "KB", "Ki", "MiB", "mb", "G", "GiB"])
).map(lambda t: f"{t[0]}{t[1]}")


@given(cpu_texts)
def test_cpu_round_trips_through_its_canonical_form(value: str | int | float) -> None:
    parsed = parse_cpu(value)
    assert parse_cpu(format_cpu(parsed)) == parsed


@given(size_texts)
def test_sizes_round_trip_through_their_canonical_form(value: str) -> None:
    parsed = parse_bytes(value)
    assert parse_bytes(format_bytes(parsed)) == parsed


@given(st.text(max_size=12))
def test_any_text_gives_a_number_or_a_value_error(text: str) -> None:
    for parse in (parse_cpu, parse_bytes, parse_gpu, parse_duration_seconds):
        try:
            assert parse(text) >= 0
        except ValueError as exc:
            assert str(exc).endswith(".")


HUGE_DIGITS = "9" * 5000  # past Python's 4300-digit int() guard, and past float64


@pytest.mark.parametrize(
    "value", ["1e400", "1e308", "1.7e305", HUGE_DIGITS, HUGE_DIGITS + "m", 10**400, 1e308]
)
def test_cpu_past_any_machine_is_refused_not_overflowed(value: str | int | float) -> None:
    with pytest.raises(ValueError, match="far more than any machine") as caught:
        parse_cpu(value)
    assert len(str(caught.value)) < 200  # the value is quoted back cut short


@pytest.mark.parametrize("value", ["-1e400", "-" + HUGE_DIGITS + "m", -(10**400)])
def test_cpu_far_below_zero_is_negative_not_overflowed(value: str | int) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_cpu(value)


def test_cpu_limit_is_the_largest_exact_json_integer() -> None:
    assert parse_cpu(f"{MAX_MILLICORES}m") == MAX_MILLICORES
    with pytest.raises(ValueError, match="far more"):
        parse_cpu(f"{MAX_MILLICORES + 1}m")


@pytest.mark.parametrize("value", [HUGE_DIGITS, HUGE_DIGITS + "GiB", "1" + "0" * 400, 10**400])
def test_sizes_of_any_length_are_too_large_not_a_crash(value: str | int) -> None:
    with pytest.raises(ValueError, match="too large") as caught:
        parse_bytes(value)
    assert len(str(caught.value)) < 200


def test_size_limit_is_what_go_humanize_accepts() -> None:
    assert parse_bytes(MAX_BYTES) == MAX_BYTES
    with pytest.raises(ValueError, match="too large"):
        parse_bytes(MAX_BYTES + 1)


@pytest.mark.parametrize("value", ["1" * 29, HUGE_DIGITS, 10**400, 1e300, MAX_GPUS + 1])
def test_gpu_counts_above_the_limit_are_refused(value: str | int | float) -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_GPUS}"):
        parse_gpu(value)


def test_gpu_limit_itself_is_accepted() -> None:
    assert parse_gpu(str(MAX_GPUS)) == MAX_GPUS


@pytest.mark.parametrize(
    "value",
    [HUGE_DIGITS, HUGE_DIGITS + "h", "9" * 10**6 + "h", "2562047h47m17s", 10**400, 1e300],
)
def test_durations_go_cannot_hold_are_refused(value: str | int | float) -> None:
    with pytest.raises(ValueError, match="longer than Go can count"):
        parse_duration_seconds(value)


def test_duration_limit_is_gos_longest_time_duration_in_whole_seconds() -> None:
    assert parse_duration_seconds(MAX_SECONDS) == MAX_SECONDS
    assert parse_duration_seconds("2562047h47m16s") == MAX_SECONDS
    with pytest.raises(ValueError, match="longer than Go can count"):
        parse_duration_seconds(MAX_SECONDS + 1)
