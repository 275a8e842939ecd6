"""What a mention asks the bot to do, read from the post's text and its facets.

The Bluesky app shortens long links in the visible text ("example.com/specs/hel...") and
keeps the full URL only in the post's link facet, so the text is first rebuilt with every
link facet's byte range replaced by its URL. Mentions of the bot itself are dropped so the
command reads the same wherever in the post the bot is addressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from atproto import models

__all__ = ["Command", "Kind", "parse_command", "restore_links"]

Kind = Literal["run", "describe", "validate", "help", "unknown"]

_JOB_VERBS: dict[str, Kind] = {"run": "run", "describe": "describe", "validate": "validate"}


@dataclass(frozen=True)
class Command:
    """One parsed request: `kind` and its argument (a URL or a job id); `problem` says why
    an `unknown` command could not be read, for the usage reply."""

    kind: Kind
    argument: str = ""
    problem: str = ""


def _link_uri(facet: models.AppBskyRichtextFacet.Main) -> str | None:
    for feature in facet.features:
        if isinstance(feature, models.AppBskyRichtextFacet.Link):
            return feature.uri
    return None


def _mentions(facet: models.AppBskyRichtextFacet.Main, did: str) -> bool:
    return any(
        isinstance(feature, models.AppBskyRichtextFacet.Mention) and feature.did == did
        for feature in facet.features
    )


def restore_links(
    text: str,
    facets: Sequence[models.AppBskyRichtextFacet.Main] | None,
    drop_mentions_of: str | None = None,
) -> str:
    """Return `text` with each link facet's bytes replaced by its full URL (and, when a DID
    is given, mentions of that DID replaced by a space). Facets that overlap or fall outside
    the text are ignored: a malformed post must not crash the bot."""
    raw = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for facet in facets or ():
        start, end = facet.index.byte_start, facet.index.byte_end
        if not 0 <= start < end <= len(raw):
            continue
        uri = _link_uri(facet)
        if uri is not None:
            edits.append((start, end, uri.encode("utf-8")))
        elif drop_mentions_of and _mentions(facet, drop_mentions_of):
            edits.append((start, end, b" "))
    out, last = [], 0
    for start, end, replacement in sorted(edits):
        if start < last:
            continue
        out += [raw[last:start], replacement]
        last = end
    out.append(raw[last:])
    return b"".join(out).decode("utf-8", errors="replace")


def parse_command(
    text: str,
    facets: Sequence[models.AppBskyRichtextFacet.Main] | None = None,
    bot_did: str | None = None,
) -> Command:
    """Find the command in a mention: the first `job <verb> <argument>` or `help`.

    Words before the command (greetings, other @handles) are skipped; the verb is matched
    case-insensitively, the argument is kept as written.
    """
    words = restore_links(text, facets, drop_mentions_of=bot_did).split()
    for i, word in enumerate(words):
        lowered = word.lower()
        if lowered == "help":
            return Command("help")
        if lowered != "job":
            continue
        verb = words[i + 1].lower() if i + 1 < len(words) else ""
        kind = _JOB_VERBS.get(verb)
        if kind is None:
            named = f"`job {verb}`" if verb else "`job` alone"
            return Command("unknown", problem=f"{named} is not a command I know")
        if i + 2 >= len(words):
            what = "a job id" if kind == "describe" else "the URL of a job file"
            return Command("unknown", problem=f"`job {verb}` needs {what}")
        return Command(kind, words[i + 2])
    return Command("unknown", problem="I found no command in your post")
