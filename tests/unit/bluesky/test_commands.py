"""Reading the command out of a mention, as the Bluesky app writes it."""

from __future__ import annotations

from atproto import client_utils

from klippfisk.adapters.bluesky.commands import Command, parse_command, restore_links

BOT = "did:plc:bot"
URL = "https://example.org/specs/hello-world/job.yaml"


def post(builder: client_utils.TextBuilder) -> tuple[str, list]:
    return builder.build_text(), builder.build_facets()


def test_the_full_url_comes_from_the_link_facet_not_the_shortened_text() -> None:
    text, facets = post(
        client_utils.TextBuilder()
        .mention("@jobs.test", BOT)
        .text(" job run ")
        .link("example.org/specs/hel...", URL)
    )
    assert parse_command(text, facets, BOT) == Command("run", URL)


def test_link_offsets_are_bytes_so_text_before_it_may_be_non_ascii() -> None:
    text, facets = post(
        client_utils.TextBuilder()
        .text("Hei 🐟 fra Ålesund ")
        .mention("@jobs.test", BOT)
        .text(" job validate ")
        .link("example.org/…", URL)
    )
    assert parse_command(text, facets, BOT) == Command("validate", URL)


def test_describe_takes_a_job_id_and_verbs_ignore_case() -> None:
    text, facets = post(
        client_utils.TextBuilder().mention("@jobs.test", BOT).text(" Job DESCRIBE j-1a2b3c4d")
    )
    assert parse_command(text, facets, BOT) == Command("describe", "j-1a2b3c4d")


def test_help_and_anything_else() -> None:
    assert parse_command("@jobs.test help").kind == "help"
    unknown = parse_command("@jobs.test what a nice day")
    assert unknown.kind == "unknown"
    assert "no command" in unknown.problem


def test_a_verb_without_argument_or_an_unknown_verb_says_what_is_missing() -> None:
    assert parse_command("job run").problem == "`job run` needs the URL of a job file"
    assert parse_command("job describe").problem == "`job describe` needs a job id"
    assert parse_command("job launch x").problem == "`job launch` is not a command I know"
    assert parse_command("job").problem == "`job` alone is not a command I know"


def test_only_the_bots_mention_is_dropped() -> None:
    text, facets = post(
        client_utils.TextBuilder()
        .mention("@jobs.test", BOT)
        .text(" ")
        .mention("@friend.test", "did:plc:friend")
        .text(" help")
    )
    assert restore_links(text, facets, drop_mentions_of=BOT) == "  @friend.test help"


def test_facets_outside_the_text_or_overlapping_are_ignored() -> None:
    text, facets = post(client_utils.TextBuilder().text("job run ").link("x", URL))
    beyond = facets[0].index.model_copy(update={"byte_end": 999})
    broken = [*facets, facets[0], facets[0].model_copy(update={"index": beyond})]
    assert parse_command(text, broken) == Command("run", URL)
