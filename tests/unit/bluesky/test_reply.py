"""Reply composition: Bluesky's grapheme limit, byte-offset link facets, thread refs."""

from __future__ import annotations

from atproto import models

from klippfisk.adapters.bluesky.reply import (
    MAX_BYTES,
    MAX_GRAPHEMES,
    TRUNCATION_MARKER,
    compose,
    grapheme_count,
    link_facets,
    thread_refs,
)

FAMILY = "👨‍👩‍👧‍👦"  # one grapheme, seven code points, 25 bytes


def test_graphemes_not_code_points_or_bytes_are_counted() -> None:
    assert grapheme_count(FAMILY) == 1
    assert grapheme_count("🇳🇴 e\u0301") == 3


def test_a_long_stdout_is_cut_to_300_graphemes_with_a_marker() -> None:
    reply = compose("Job j-1 completed.\n", "🐟" * 1000)
    assert grapheme_count(reply.text) == MAX_GRAPHEMES
    assert reply.text.startswith("Job j-1 completed.\n🐟")
    assert reply.text.endswith(TRUNCATION_MARKER)


def test_emoji_families_are_cut_to_3000_bytes_never_inside_a_grapheme() -> None:
    reply = compose("Job j-1 completed.\n", FAMILY * 1000)
    assert len(reply.text.encode()) <= MAX_BYTES
    assert grapheme_count(reply.text) < MAX_GRAPHEMES  # the bytes ran out first
    assert reply.text.startswith("Job j-1 completed.\n" + FAMILY * 100)
    assert reply.text.endswith(FAMILY + TRUNCATION_MARKER)  # no half family before the marker


def test_one_grapheme_of_many_combining_marks_is_not_kept_past_the_byte_limit() -> None:
    zalgo = "e" + "\u0301" * 2000  # one grapheme, 4001 bytes
    reply = compose("Job j-1 completed.\n", "ok " + zalgo)
    assert reply.text == "Job j-1 completed.\nok" + TRUNCATION_MARKER


def test_a_multibyte_head_is_cut_to_the_byte_limit_too() -> None:
    reply = compose("Å" * 290 + FAMILY * 9, "stdout")  # 299 graphemes, 805 bytes: fits
    assert reply.text.startswith("Å" * 290 + FAMILY * 9)
    reply = compose(FAMILY * 299, "stdout")  # 299 graphemes, 7475 bytes: does not
    assert len(reply.text.encode()) <= MAX_BYTES
    assert "stdout" not in reply.text


def test_a_short_reply_is_left_alone() -> None:
    assert compose("Job done.\n", "hello\n").text == "Job done.\nhello\n"


def test_a_head_that_is_too_long_is_cut_and_the_body_dropped() -> None:
    reply = compose("x" * 400, "stdout")
    assert grapheme_count(reply.text) == MAX_GRAPHEMES
    assert "stdout" not in reply.text


def test_every_url_gets_a_link_facet_at_its_utf8_byte_offsets() -> None:
    text = "Ål 🐟 see https://example.org/a?b=1, and http://x.test/p."
    facets = link_facets(text)
    raw = text.encode()
    spans = [raw[f.index.byte_start : f.index.byte_end].decode() for f in facets]
    assert spans == ["https://example.org/a?b=1", "http://x.test/p"]
    assert [f.features[0].uri for f in facets] == spans


def test_the_cut_never_leaves_half_a_url() -> None:
    body = "a" * 250 + " https://example.org/" + "b" * 100
    reply = compose("Head.\n", body)
    assert "https://" not in reply.text
    assert reply.facets == []


def test_a_reply_to_a_top_level_post_is_rooted_at_it() -> None:
    mention = models.ComAtprotoRepoStrongRef.Main(
        uri="at://did:plc:a/app.bsky.feed.post/1", cid="c1"
    )
    refs = thread_refs(mention, None)
    assert refs.parent == mention
    assert refs.root == mention


def test_a_reply_inside_a_thread_keeps_the_threads_root() -> None:
    root = models.ComAtprotoRepoStrongRef.Main(uri="at://did:plc:r/app.bsky.feed.post/0", cid="c0")
    mention = models.ComAtprotoRepoStrongRef.Main(
        uri="at://did:plc:a/app.bsky.feed.post/1", cid="c1"
    )
    refs = thread_refs(mention, models.AppBskyFeedPost.ReplyRef(parent=root, root=root))
    assert refs.parent == mention
    assert refs.root == root
