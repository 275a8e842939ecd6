"""Composing a reply post: threaded refs, link facets, and Bluesky's 300-grapheme limit.

Bluesky counts a post's length in graphemes (what a reader sees as one character: a flag or a
family emoji is one), not bytes or code points, and refuses longer posts; so text is counted
and cut with the `regex` module's \\X. Facets index UTF-8 bytes, so their offsets are computed
on the encoded final text. Every URL in the reply gets a link facet, since clients only make
faceted text clickable.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex
from atproto import models

__all__ = [
    "MAX_GRAPHEMES",
    "TRUNCATION_MARKER",
    "Reply",
    "compose",
    "grapheme_count",
    "link_facets",
    "thread_refs",
]

MAX_GRAPHEMES = 300
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


def _cut(text: str, budget: int) -> str:
    """At most `budget` graphemes of text, marker included, never ending inside a URL."""
    if grapheme_count(text) <= budget:
        return text
    keep = max(budget - grapheme_count(TRUNCATION_MARKER), 0)
    head = "".join(_GRAPHEME.findall(text)[:keep])
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


def compose(head: str, body: str = "", limit: int = MAX_GRAPHEMES) -> Reply:
    """A reply of `head` then as much of `body` (e.g. stdout) as fits within `limit`.

    The head says what happened and is kept whole when it fits; the body is cut with a
    marker so the reader knows there is more (`job describe` shows it all).
    """
    head = _cut(head, limit)
    room = limit - grapheme_count(head)
    text = head + (_cut(body, room) if body and room > grapheme_count(TRUNCATION_MARKER) else "")
    return Reply(text, link_facets(text))


def thread_refs(
    parent: models.ComAtprotoRepoStrongRef.Main,
    parent_reply: models.AppBskyFeedPost.ReplyRef | None,
) -> models.AppBskyFeedPost.ReplyRef:
    """Reply refs for answering `parent`: its thread's root if it is a reply, else itself."""
    root = parent_reply.root if parent_reply is not None else parent
    return models.AppBskyFeedPost.ReplyRef(parent=parent, root=root)
