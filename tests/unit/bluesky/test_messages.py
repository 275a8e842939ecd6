"""What the bot says about a spec the real compiler rejects or accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from klippfisk.adapters.bluesky import messages
from klippfisk.adapters.bluesky.reply import MAX_GRAPHEMES, compose, grapheme_count
from klippfisk.spec import SpecError, compile_document

INVALID = Path(__file__).parents[2] / "data" / "bluesky" / "invalid.yaml"


def test_an_invalid_spec_is_described_by_its_first_error_with_line_and_path() -> None:
    with pytest.raises(SpecError) as caught:
        compile_document(INVALID.read_bytes() + b"      Memory: plenty\n")
    text = messages.invalid_spec(caught.value)
    assert text.startswith("Invalid job spec at line 14, /Tasks/0/Resources/CPU: CPU 'lots'")
    assert text.endswith("(+1 more)")
    assert ".." not in text


def test_every_message_fits_a_post_even_with_long_input() -> None:
    long_reason = "x" * 1000
    for text in (
        messages.fetch_refused(long_reason),
        messages.submit_refused(long_reason),
        messages.usage(long_reason),
    ):
        assert grapheme_count(compose(text).text) == MAX_GRAPHEMES


def test_the_rate_limit_message_says_when_to_try_again() -> None:
    assert "for 42 s" in messages.rate_limited(42.4)
    assert "for 1 s" in messages.rate_limited(0.1)
