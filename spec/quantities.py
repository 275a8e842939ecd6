"""CPU, byte, GPU and duration quantities, read the way Bacalhau (Go) reads them.

A job written for Bacalhau must mean the same here, so each parser follows what Bacalhau's
ResourcesConfig does: the text is first lower-cased and stripped of spaces and newlines; CPU
is then read by BTBurke/k8sresource ("500m" is whole millicores, anything else a decimal
number of cores, truncated to millicores: "0.5", "2", "1.5"), memory and disk by go-humanize's
ParseBytes (SI and IEC suffixes, "2GB" = 2e9, "2Gi" = 2*2^30, "512Mb" = 512e6, a bare number
is bytes, float64 arithmetic truncated to whole bytes) and GPU as an unsigned integer.
Durations are whole seconds, as Bacalhau's timeouts are, or Go durations ("1h30m") for
convenience. Every parser raises ValueError with a sentence a user can act on; the canonical
forms are millicores ("500m") and decimal byte counts ("1073741824").

Limits: CPU and GPU at most 2^53 - 1 (the largest integer canonical JSON keeps exact, far below
the int64/uint64 Go reads them as), sizes below 2^64 bytes (go-humanize refuses more), durations
at most 9223372036 seconds (Bacalhau turns timeouts into Go's time.Duration, int64 nanoseconds,
which overflows beyond that). Digit runs are read through Decimal, so a number of any length is
compared with its limit instead of tripping Python's 4300-digit int() guard.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from klippfisk.spec.errors import shown

__all__ = [
    "MAX_BYTES",
    "MAX_GPUS",
    "MAX_MILLICORES",
    "MAX_SECONDS",
    "format_bytes",
    "format_cpu",
    "parse_bytes",
    "parse_cpu",
    "parse_duration_seconds",
    "parse_gpu",
]

MAX_MILLICORES = 2**53 - 1  # canonical JSON keeps integers exact only up to here
MAX_GPUS = 2**53 - 1  # the same bound; Bacalhau's uint64 never gets near it
MAX_BYTES = 2**64 - 1  # go-humanize refuses float64(MaxUint64) = 2^64 and up
MAX_SECONDS = (2**63 - 1) // 10**9  # Go's time.Duration: int64 nanoseconds, about 292 years
_MAX_NANOS = Decimal(2**63 - 1)

_MILLICORES = re.compile(r"[+-]?\d+m")  # Go's strconv.Atoi, then the "m"
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?")  # finite ParseFloat input

_SI = {p: 1000**i for i, p in enumerate("kmgtpe", 1)}
_IEC = {p: 1024**i for i, p in enumerate("kmgtpe", 1)}
# go-humanize's table: "", "b", then "<p>", "<p>b" (SI) and "<p>i", "<p>ib" (IEC) per prefix
_BYTE_SUFFIXES: dict[str, int] = {
    "": 1,
    "b": 1,
    **{p: m for p, m in _SI.items()},
    **{p + "b": m for p, m in _SI.items()},
    **{p + "i": m for p, m in _IEC.items()},
    **{p + "ib": m for p, m in _IEC.items()},
}

_GO_DURATION_PART = re.compile(r"(\d*(?:\.\d*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_NANOS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


@dataclass(frozen=True)
class _Rules:
    """How one kind of quantity is bounded and what it says when refused (`{}` is the value,
    quoted short). Messages are built only on refusal, so a valid quantity formats nothing."""

    maximum: int
    hint: str
    negative: str
    too_large: str
    fraction: str = ""

    def fail(self, message: _Message, value: object) -> ValueError:
        return ValueError(getattr(self, message).format(shown(value)))

    def within(self, amount: int | float | Decimal, value: object) -> int:
        """`amount` as an int if within 0..maximum; compared before converting, so an
        infinite or enormous number never reaches int()."""
        if amount < 0:
            raise self.fail("negative", value)
        if amount > self.maximum:
            raise self.fail("too_large", value)
        return int(amount)

    def whole(self, value: int | float) -> int:
        """A number given as a number: it must be whole as well as within bounds."""
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise self.fail("hint", value)
        return self.within(value, value)


_Message = Literal["hint", "negative", "too_large", "fraction"]
_NEGATIVE = "{} is negative; it must be 0 or more."
_CPU = _Rules(
    MAX_MILLICORES,
    'CPU {} is not understood; write millicores ("500m") or cores ("0.5", "2").',
    "CPU {} is negative; ask for 0 or more.",
    "CPU {} is far more than any machine has; ask for less.",
)
_SIZE = _Rules(
    MAX_BYTES,
    "The size {} is not understood; write a number of bytes (1073741824) or a number with a "
    'unit such as "512MB", "2GB" or "2GiB".',
    "The size " + _NEGATIVE,
    "The size {} is too large; ask for less than 16 EiB.",
)
_GPU = _Rules(
    MAX_GPUS,
    'GPU {} is not a whole number of GPUs; write e.g. 1 or "2".',
    "GPU " + _NEGATIVE,
    f"GPU {{}} is more GPUs than any node has; ask for at most {MAX_GPUS}.",
)
_DURATION = _Rules(
    MAX_SECONDS,
    "The duration {} is not understood; write whole seconds (300) or a Go duration such as "
    '"30s", "5m" or "1h30m".',
    "The duration " + _NEGATIVE,
    "The duration {} is longer than Go can count (about 292 years); write at most "
    f"{MAX_SECONDS} seconds, or 0 for no limit.",
    "The duration {} is not a whole number of seconds; Bacalhau counts timeouts in seconds, "
    "so round it (e.g. 2s instead of 1500ms).",
)


def parse_cpu(value: str | int | float) -> int:
    """Millicores, as Bacalhau reads CPU: "500m" exactly, "0.5"/"2"/0.5 truncated to millicores."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _CPU.fail("hint", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _CPU.fail("hint", value)
    amount: Decimal | float | int
    if isinstance(value, int):
        amount = value * 1000
    elif _MILLICORES.fullmatch(
        text := _normalised(value if isinstance(value, str) else repr(value))
    ):
        amount = Decimal(text[:-1])  # Go's Atoi: exact, of any length until the bound below
    elif _DECIMAL.fullmatch(text):
        amount = float(text) * 1000  # float64 and truncation, as k8sresource does; may be inf
    else:
        raise _CPU.fail("hint", value)
    return _CPU.within(amount, value)


def format_cpu(millicores: int) -> str:
    """The canonical CPU form: always millicores, so equal amounts compare equal as text."""
    _require_non_negative_int(millicores, "CPU millicores")
    return f"{millicores}m"


def parse_bytes(value: str | int | float) -> int:
    """Bytes from a go-humanize size ("2GB", "2Gi", "512Mb", "1073741824")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _SIZE.fail("hint", value)
    if not isinstance(value, str):
        return _SIZE.whole(value)
    text = _normalised(value)
    number = text[: len(text) - len(text.lstrip("0123456789."))]
    suffix = text[len(number) :]
    multiplier = _BYTE_SUFFIXES.get(suffix)
    if not number or multiplier is None:
        raise _SIZE.fail("hint", value)
    try:
        amount = float(number) * multiplier  # float64 arithmetic, as go-humanize does
    except ValueError:
        raise _SIZE.fail("hint", value) from None
    return _SIZE.within(amount, value)  # a digit run too long for float64 is inf: too large


def format_bytes(n: int) -> str:
    """The canonical size form: a decimal count of bytes, exact and unit-free."""
    _require_non_negative_int(n, "A size")
    return str(n)


def parse_gpu(value: str | int) -> int:
    """A whole, non-negative number of GPUs (Bacalhau reads it as an unsigned integer)."""
    if isinstance(value, bool):
        raise _GPU.fail("hint", value)
    if isinstance(value, int | float):
        return _GPU.whole(value)
    if isinstance(value, str) and (text := _normalised(value)).isascii() and text.isdigit():
        return _GPU.within(Decimal(text), value)
    raise _GPU.fail("hint", value)


def parse_duration_seconds(value: str | int | float) -> int:
    """Whole seconds from a number of seconds or a Go duration ("30s", "5m", "1h30m")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _DURATION.fail("hint", value)
    if not isinstance(value, str):
        return _DURATION.whole(value)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _DURATION.within(Decimal(text), value)
    if text.startswith("-"):
        raise _DURATION.fail("negative", value)
    nanos = _go_duration_nanos(text.removeprefix("+"), value)
    if nanos > _MAX_NANOS:  # Go's ParseDuration refuses it too, and divmod could not cope
        raise _DURATION.fail("too_large", value)
    seconds, rest = divmod(nanos, 10**9)
    if rest:
        raise _DURATION.fail("fraction", value)
    return int(seconds)


def _go_duration_nanos(text: str, value: str) -> Decimal:
    if text == "0":
        return Decimal(0)
    total = Decimal(0)
    position = 0
    for match in _GO_DURATION_PART.finditer(text):
        number = match.group(1)
        if match.start() != position or number in ("", "."):
            raise _DURATION.fail("hint", value)
        part = Decimal(number)
        if part > _MAX_NANOS:  # too long in any unit; multiplying could overflow Decimal
            return part
        total += part * _NANOS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise _DURATION.fail("hint", value)
    return total


def _normalised(text: str) -> str:
    """Bacalhau's ResourcesConfig.Normalize: lower case, no spaces, no newlines."""
    return text.lower().replace(" ", "").replace("\n", "")


def _require_non_negative_int(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number of 0 or more, not {value!r}.")
