"""`OutputFollower`: a growing output file read as text, never a character mangled."""

from __future__ import annotations

from pathlib import Path

from klippfisk.engine.results import PIECE_BYTES, OutputFollower

FISH = "\N{FISH}"  # four bytes in UTF-8


def straddling_text() -> str:
    """Text whose UTF-8 puts a four-byte character across the first piece boundary."""
    text = "ab" + FISH * (PIECE_BYTES // 2)
    assert text.encode()[PIECE_BYTES] & 0xC0 == 0x80, "the piece ends inside a fish"
    return text


def test_a_character_across_the_piece_boundary_arrives_whole(tmp_path: Path):
    path = tmp_path / "stdout"
    text = straddling_text()
    path.write_text(text, encoding="utf-8")
    follower = OutputFollower(path)

    first = follower.read()

    assert follower.offset == PIECE_BYTES
    assert first == "ab" + FISH * ((PIECE_BYTES - 2) // 4), "the cut fish is held back"
    rest = "".join(iter(follower.read, ""))
    assert first + rest + follower.flush() == text


def test_read_grown_reads_everything_there_a_piece_at_a_time(tmp_path: Path):
    path = tmp_path / "stdout"
    text = straddling_text()
    path.write_text(text, encoding="utf-8")
    follower = OutputFollower(path)

    pieces = list(follower.read_grown())

    assert len(pieces) == 3 and "\N{REPLACEMENT CHARACTER}" not in "".join(pieces)
    assert "".join(pieces) == text and follower.flush() == ""


def test_what_is_written_while_reading_waits_for_the_next_call(tmp_path: Path):
    path = tmp_path / "stdout"
    path.write_bytes(b"x" * (PIECE_BYTES + 10))
    follower = OutputFollower(path)

    reading = follower.read_grown()
    next(reading)
    with path.open("ab") as stream:
        stream.write(b"later\n")
    assert list(reading) == ["x" * 10]

    assert list(follower.read_grown()) == ["later\n"]


def test_a_character_written_in_two_parts_is_held_until_whole(tmp_path: Path):
    path = tmp_path / "stderr"
    encoded = "é\n".encode()
    path.write_bytes(encoded[:1])
    follower = OutputFollower(path)

    assert follower.read() == ""
    with path.open("ab") as stream:
        stream.write(encoded[1:])

    assert follower.read() == "é\n"


def test_no_file_yet_is_none_and_no_growth_is_empty(tmp_path: Path):
    path = tmp_path / "stdout"
    follower = OutputFollower(path)

    assert follower.read() is None
    assert list(follower.read_grown()) == []
    path.write_text("hi\n")
    assert follower.read() == "hi\n"
    assert follower.read() == ""


def test_a_character_cut_off_at_the_very_end_is_one_replacement_character(tmp_path: Path):
    path = tmp_path / "stdout"
    path.write_bytes(b"ok " + FISH.encode()[:2])
    follower = OutputFollower(path)

    assert "".join(follower.read_grown()) == "ok "
    assert follower.flush() == "\N{REPLACEMENT CHARACTER}"
