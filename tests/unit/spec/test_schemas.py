"""The checked-in JSON Schemas are generated from the models and must not go stale; the
canonical schema accepts what the compiler writes and refuses what it never writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from klippfisk.spec import compile_document
from klippfisk.spec.schema_export import main, render, schemas, write

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


@pytest.mark.parametrize("name", sorted(schemas()))
def test_checked_in_schema_is_up_to_date(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{name} is missing; run python3 -m klippfisk.spec.schema_export"
    assert path.read_text(encoding="utf-8") == render(schemas()[name]), (
        f"{name} is stale; run python3 -m klippfisk.spec.schema_export"
    )


def test_every_schema_is_a_valid_2020_12_schema() -> None:
    for schema in schemas().values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_export_check_mode_notices_a_stale_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "job.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["--check", "--dir", str(tmp_path)]) == 1


def test_the_canonical_schema_requires_canonical_quantities() -> None:
    job = compile_document("image: ubuntu\ncommand: [date]\n").job
    validator = jsonschema.Draft202012Validator(schemas()["job.schema.json"])
    assert list(validator.iter_errors(job)) == []
    job["Tasks"][0]["Resources"]["Memory"] = "1Gi"
    del job["Tasks"][0]["Timeouts"]
    messages = [e.message for e in validator.iter_errors(job)]
    assert any("1Gi" in m for m in messages) and any("Timeouts" in m for m in messages)


def test_the_input_schema_accepts_a_hand_written_job() -> None:
    text = json.dumps(
        {
            "Type": "batch",
            "Tasks": [{"Name": "m", "Engine": {"Type": "noop"}, "Resources": {"CPU": 1}}],
        }
    )
    jsonschema.validate(json.loads(text), schemas()["job-input.schema.json"])
