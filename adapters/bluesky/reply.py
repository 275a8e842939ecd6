"""Composing a reply post: threaded refs, link facets, and Bluesky's two length limits.

Bluesky counts a post's length in graphemes (what a reader sees as one character: a flag or a
family emoji is one), not bytes or code points, and refuses longer posts; so text is counted
and cut with the `regex` module's \\X. The record's text also has a hard cap of 3000 UTF-8
bytes, which 300 graphemes can exceed (a family emoji is 25 bytes, a stack of combining marks
more), so a cut keeps within both and never splits a grapheme. Facets index UTF-8 bytes, so
their offsets are computed on the encoded final text. Every URL in the reply gets a link
facet, since clients only make faceted text clickable.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex
from atproto import models

__all__ = [
    "MAX_BYTES",
    "MAX_GRAPHEMES",
    "TRUNCATION_MARKER",
    "Reply",
    "compose",
    "grapheme_count",
    "link_facets",
    "thread_refs",
]

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
TRUNCATION_MARKER = "… (cut)"
_GRAPHEME = regex.compile(r"\X")
_URL = regex.compile(r"https?://[^\s<>\"'`]+")
_URL_TRAILERS = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Reply:
    """The text of a reply and its facets, ready for a post record."""

    text: str
    facets: list[models.AppBskyRichtextFacet.Main]


def grapheme_count(text: str) -> int:
    """How long Bluesky considers `text` to be."""
    return len(_GRAPHEME.findall(text))


def _url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the URLs in text, without trailing punctuation."""
    spans = []
    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _URL_TRAILERS:
            end -= 1
        spans.append((match.start(), end))
    return spans


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fits(text: str, graphemes: int, size: int) -> bool:
    return _size(text) <= size and grapheme_count(text) <= graphemes


def _cut(text: str, graphemes: int, size: int) -> str:
    """At most `graphemes` graphemes and `size` UTF-8 bytes of text, marker included, never
    ending inside a URL or a grapheme."""
    if _fits(text, graphemes, size):
        return text
    room = size - _size(TRUNCATION_MARKER)
    kept: list[str] = []
    for grapheme in _GRAPHEME.findall(text)[
        : max(graphemes - grapheme_count(TRUNCATION_MARKER), 0)
    ]:
        room -= _size(grapheme)
        if room < 0:
            break
        kept.append(grapheme)
    head = "".join(kept)
    for start, end in _url_spans(text):
        if start < len(head) < end:
            head = head[:start]
    return head.rstrip() + TRUNCATION_MARKER


def link_facets(text: str) -> list[models.AppBskyRichtextFacet.Main]:
    """A link facet for every URL in text, with UTF-8 byte offsets."""
    facets = []
    for start, end in _url_spans(text):
        byte_start = len(text[:start].encode("utf-8"))
        byte_end = byte_start + len(text[start:end].encode("utf-8"))
        facets.append(
            models.AppBskyRichtextFacet.Main(
                index=models.AppBskyRichtextFacet.ByteSlice(
                    byte_start=byte_start, byte_end=byte_end
                ),
                features=[models.AppBskyRichtextFacet.Link(uri=text[start:end])],
            )
        )
    return facets


def compose(
    head: str, body: str = "", limit: int = MAX_GRAPHEMES, max_bytes: int = MAX_BYTES
) -> Reply:
    """A reply of `head` then as much of `body` (e.g. stdout) as fits within `limit`
    graphemes and `max_bytes` bytes.

    The head says what happened and is kept whole when it fits; the body is cut with a
    marker so the reader knows there is more (`job describe` shows it all).
    """
    if not _fits(head, limit, max_bytes):
        body = ""  # a cut head already ends with the marker
        head = _cut(head, limit, max_bytes)
    graphemes, size = limit - grapheme_count(head), max_bytes - _size(head)
    has_room = graphemes > grapheme_count(TRUNCATION_MARKER) and size > _size(TRUNCATION_MARKER)
    text = head + (_cut(body, graphemes, size) if body and has_room else "")
    return Reply(text, link_facets(text))


def thread_refs(
    parent: models.ComAtprotoRepoStrongRef.Main,
    parent_reply: models.AppBskyFeedPost.ReplyRef | None,
) -> models.AppBskyFeedPost.ReplyRef:
    """Reply refs for answering `parent`: its thread's root if it is a reply, else itself."""
    root = parent_reply.root if parent_reply is not None else parent
    return models.AppBskyFeedPost.ReplyRef(parent=parent, root=root)
