"""Compile throughput over the job corpus, side by side with two reference points.

    python3 -m bench.compile [--rounds 20]    (from the repository root)

In one run, over the same documents (every valid file of tests/data/corpus, as bytes):
(1) the floor: PyYAML CSafeLoader parse + json.dumps(sort_keys=True) + sha256, i.e. the
least any content-addressing loader must do; (2) plain `jsonschema` validation of the parsed
document against Bacalhau's own swagger `models.Job` definition (parse included, as every
caller must parse first); (3) the full compiler (`compile_document`: load with limits and
line map, detect and translate the form, defaults, every rule, normalise, CIDs, report).
Targets: (3) within 3x of (1) in time per spec, and faster than (2).

The HTTP API compiles bodies its JSON parser has already read (`compile_job`), so that path
is measured too: (4) the same documents as parsed data, and (5) a minimal Bacalhau client
submission, in microseconds per call. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from klippfisk.spec import SpecError, compile_document, compile_job, load_document

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
SWAGGER = ROOT / "tests" / "data" / "bacalhau-swagger.json"
# a minimal job as Bacalhau's Go and Python clients submit it, already parsed from JSON
HTTP_BODY = {
    "Name": "bench-1",
    "Type": "batch",
    "Count": 1,
    "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}],
}


def corpus() -> list[bytes]:
    """The corpus files the compiler accepts (invalid ones would measure error paths)."""
    documents = []
    for path in sorted(CORPUS.iterdir()):
        if path.name == "README.md":
            continue
        data = path.read_bytes()
        try:
            compile_document(data)
        except SpecError:
            continue
        documents.append(data)
    return documents


def floor(data: bytes) -> None:
    parsed = yaml.load(data, Loader=yaml.CSafeLoader)
    hashlib.sha256(json.dumps(parsed, sort_keys=True).encode()).hexdigest()


def swagger_validator() -> Callable[[bytes], None]:
    definitions = json.loads(SWAGGER.read_text(encoding="utf-8"))["definitions"]
    schema = {"$ref": "#/definitions/models.Job", "definitions": definitions}
    validator = jsonschema.Draft4Validator(schema)

    def validate(data: bytes) -> None:
        parsed = yaml.load(data, Loader=yaml.CSafeLoader)
        for _ in validator.iter_errors(parsed):
            pass

    return validate


def measure(
    steps: dict[str, tuple[Callable[[Any], Any], list[Any]]], rounds: int
) -> dict[str, float]:
    """Inputs per second for each step over its inputs: the steps take turns within every
    round (so a busy machine slows them alike), and each keeps its best round (its least
    disturbed one)."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, (step, inputs) in steps.items():
            start = time.perf_counter()
            for data in inputs:
                step(data)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(steps[name][1]) / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    documents = corpus()
    parsed = [load_document(data).data for data in documents]
    rates = measure(
        {
            "floor": (floor, documents),
            "jsonschema": (swagger_validator(), documents),
            "compile": (compile_document, documents),
            "compile_parsed": (compile_job, parsed),
            "http_body": (compile_job, [HTTP_BODY] * len(documents)),
        },
        args.rounds,
    )
    results: dict[str, Any] = {
        "documents": len(documents),
        "bytes": sum(len(d) for d in documents),
        **{f"{name}_specs_per_s": rate for name, rate in rates.items() if name != "http_body"},
        "http_body_compile_us": 1e6 / rates["http_body"],
    }
    results["compile_vs_floor_slowdown"] = (
        results["floor_specs_per_s"] / results["compile_specs_per_s"]
    )
    results["compile_vs_jsonschema_speedup"] = (
        results["compile_specs_per_s"] / results["jsonschema_specs_per_s"]
    )
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
