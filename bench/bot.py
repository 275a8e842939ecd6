"""The Bluesky bot against the real local network: `python3 -m bench.bot [--latency 10]`.

Needs root (the network runs in its own namespace; see tests/localnet/). Starts the network
(installing it the first time), a job-file server inside it, and `klippfisk bot` with its
default settings (poll every 1 s), then measures:

- latency: one author posts `job run <hello.yaml>` (a job that finishes at once) and waits
  for the reply notification; sequential, so each is measured alone. Reported as the time
  the author sees the reply (post -> reply notification) and as the bot's own share (the
  mention's createdAt -> the reply's createdAt). The original bot waited a fixed 20 s before
  answering; the target is under 3 s.
- throughput: 50 mentions (10 authors x 5, inside the default per-author limit) posted as
  fast as the authors can, then the time until all 50 are answered; every reply is checked
  (in its thread, right job id, stdout).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.localnet.network import (
    Account,
    LocalNet,
    make_bot,
    running_localnet,
    serving_job_files,
)

THROUGHPUT_AUTHORS = 10
MENTIONS_PER_AUTHOR = 5


def _created(record: Any) -> datetime:
    return datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_s": round(statistics.median(ordered), 3),
        "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max_s": round(ordered[-1], 3),
    }


def latency(net: LocalNet, bot: Account, url: str, rounds: int) -> dict[str, Any]:
    # One author posts at most MENTIONS_PER_AUTHOR, the default per-author limit per minute.
    authors = [net.account("alice") for _ in range(-(-rounds // MENTIONS_PER_AUTHOR))]
    seen, bot_share = [], []
    for i in range(rounds):
        alice = authors[i // MENTIONS_PER_AUTHOR]
        started = time.monotonic()
        post = net.mention(alice, bot, "job run", url)
        (reply,) = net.wait_for_replies(alice, post.uri, bot.did, 1)
        seen.append(time.monotonic() - started)
        mention_record = net.call(alice.client.get_posts, [post.uri]).posts[0].record
        bot_share.append((_created(reply.record) - _created(mention_record)).total_seconds())
    return {"rounds": rounds, "post_to_reply_seen": _summary(seen), "bot": _summary(bot_share)}


def throughput(net: LocalNet, bot: Account, url: str) -> dict[str, Any]:
    authors = [net.account(f"user{i}") for i in range(THROUGHPUT_AUTHORS)]
    started = time.monotonic()
    posts = [
        (author, net.mention(author, bot, "job run", url))
        for _ in range(MENTIONS_PER_AUTHOR)
        for author in authors
    ]
    posted = time.monotonic() - started
    correct = 0
    for author, post in posts:
        (reply,) = net.wait_for_replies(author, post.uri, bot.did, 1, timeout=300)
        text = reply.record.text
        if (
            reply.record.reply.root.uri == post.uri
            and text.startswith("Job j-")
            and " completed (execution e-" in text
            and text.endswith("hello from the bot 🐟 https://example.org/klippfisk\n")
        ):
            correct += 1
    took = time.monotonic() - started
    return {
        "mentions": len(posts),
        "correct_replies": correct,
        "posting_s": round(posted, 2),
        "all_answered_s": round(took, 2),
        "mentions_per_s": round(len(posts) / took, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=10, help="sequential latency rounds")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="klippfisk-bench-bot-") as workdir,
        running_localnet() as net,
        serving_job_files(net) as files,
    ):
        bot, process = make_bot(net, files, Path(workdir))
        process.start()
        try:
            url = files.url("hello.yaml")
            warm = net.mention(net.account("warm"), bot, "help")
            process.wait_until_done([warm.uri])
            result = {
                "poll_seconds": 1.0,
                "original_fixed_wait_s": 20.0,
                "latency": latency(net, bot, url, args.latency),
                "throughput": throughput(net, bot, url),
            }
        finally:
            process.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
