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
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = [
    "format_bytes",
    "format_cpu",
    "parse_bytes",
    "parse_cpu",
    "parse_duration_seconds",
    "parse_gpu",
]

_MAX_MILLICORES = 2**53 - 1  # canonical JSON keeps integers exact only up to here
_MAX_BYTES = 2**64  # go-humanize refuses anything from MaxUint64 up

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


def parse_cpu(value: str | int | float) -> int:
    """Millicores, as Bacalhau reads CPU: "500m" exactly, "0.5"/"2"/0.5 truncated to millicores."""
    hint = f'CPU {value!r} is not understood; write millicores ("500m") or cores ("0.5", "2").'
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(hint)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(hint)
    text = _normalised(value if isinstance(value, str) else repr(value))
    if _MILLICORES.fullmatch(text):
        millicores = int(text[:-1])
    elif _DECIMAL.fullmatch(text):
        millicores = int(float(text) * 1000)  # float64 and truncation, as k8sresource does
    else:
        raise ValueError(hint)
    if millicores < 0:
        raise ValueError(f"CPU {value!r} is negative; ask for 0 or more.")
    if millicores > _MAX_MILLICORES:
        raise ValueError(f"CPU {value!r} is far more than any machine has; ask for less.")
    return millicores


def format_cpu(millicores: int) -> str:
    """The canonical CPU form: always millicores, so equal amounts compare equal as text."""
    _require_non_negative_int(millicores, "CPU millicores")
    return f"{millicores}m"


def parse_bytes(value: str | int | float) -> int:
    """Bytes from a go-humanize size ("2GB", "2Gi", "512Mb", "1073741824")."""
    if isinstance(value, bool):
        raise ValueError(_bytes_hint(value))
    if isinstance(value, int | float):
        return _whole_non_negative(value, "A size", _bytes_hint(value))
    if not isinstance(value, str):
        raise ValueError(_bytes_hint(value))
    text = _normalised(value)
    number = text[: len(text) - len(text.lstrip("0123456789."))]
    suffix = text[len(number) :]
    multiplier = _BYTE_SUFFIXES.get(suffix)
    if not number or multiplier is None:
        raise ValueError(_bytes_hint(value))
    try:
        amount = float(number) * multiplier  # float64 arithmetic, as go-humanize does
    except ValueError:
        raise ValueError(_bytes_hint(value)) from None
    if amount >= _MAX_BYTES:
        raise ValueError(f"The size {value!r} is too large; ask for less than 16 EiB.")
    return int(amount)


def format_bytes(n: int) -> str:
    """The canonical size form: a decimal count of bytes, exact and unit-free."""
    _require_non_negative_int(n, "A size")
    return str(n)


def parse_gpu(value: str | int) -> int:
    """A whole, non-negative number of GPUs (Bacalhau reads it as an unsigned integer)."""
    hint = f'GPU {value!r} is not a whole number of GPUs; write e.g. 1 or "2".'
    if isinstance(value, bool):
        raise ValueError(hint)
    if isinstance(value, int | float):
        return _whole_non_negative(value, "GPU", hint)
    if isinstance(value, str) and (text := _normalised(value)).isascii() and text.isdigit():
        return int(text)
    raise ValueError(hint)


def parse_duration_seconds(value: str | int | float) -> int:
    """Whole seconds from a number of seconds or a Go duration ("30s", "5m", "1h30m")."""
    hint = (
        f"The duration {value!r} is not understood; write whole seconds (300) or a Go "
        'duration such as "30s", "5m" or "1h30m".'
    )
    if isinstance(value, bool):
        raise ValueError(hint)
    if isinstance(value, int | float):
        return _whole_non_negative(value, "A duration", hint)
    if not isinstance(value, str):
        raise ValueError(hint)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    if text.startswith("-"):
        raise ValueError(f"The duration {value!r} is negative; durations must be 0 or more.")
    nanos = _go_duration_nanos(text.removeprefix("+"), hint)
    seconds, rest = divmod(nanos, 10**9)
    if rest:
        raise ValueError(
            f"The duration {value!r} is not a whole number of seconds; Bacalhau counts "
            "timeouts in seconds, so round it (e.g. 2s instead of 1500ms)."
        )
    return int(seconds)


def _go_duration_nanos(text: str, hint: str) -> Decimal:
    if text == "0":
        return Decimal(0)
    total = Decimal(0)
    position = 0
    for match in _GO_DURATION_PART.finditer(text):
        number = match.group(1)
        if match.start() != position or number in ("", "."):
            raise ValueError(hint)
        total += Decimal(number) * _NANOS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise ValueError(hint)
    return total


def _normalised(text: str) -> str:
    """Bacalhau's ResourcesConfig.Normalize: lower case, no spaces, no newlines."""
    return text.lower().replace(" ", "").replace("\n", "")


def _whole_non_negative(value: int | float, what: str, hint: str) -> int:
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(hint)
    if value < 0:
        raise ValueError(f"{what} {value!r} is negative; it must be 0 or more.")
    return int(value)


def _require_non_negative_int(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number of 0 or more, not {value!r}.")


def _bytes_hint(value: object) -> str:
    return (
        f"The size {value!r} is not understood; write a number of bytes (1073741824) or a "
        'number with a unit such as "512MB", "2GB" or "2GiB".'
    )
