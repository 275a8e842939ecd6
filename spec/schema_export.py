"""JSON Schemas (2020-12) generated from the models; `python3 -m klippfisk.spec.schema_export`
writes them.

The models are the one source of truth: the input schemas are pydantic's validation-mode
schemas, and the canonical job schema is the serialization-mode schema tightened to what the
compiler guarantees (every field present, nothing null). The files in `schemas/` are checked
in for tools that want them without Python and ship in the wheel as `klippfisk.schemas`;
`klippfisk spec schema` serves those files (`shipped`), and a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from klippfisk.spec.models import CodeRun, DockerRun, IpvmTask, Job, LegacyJob, WasmRun

__all__ = ["SCHEMA_DIR", "render", "schemas", "shipped", "write"]

# The folder of `klippfisk.schemas`, beside this package's folder in both layouts: the clone
# (spec/ and schemas/ at the top, installed editable) and the wheel (klippfisk/spec/ and
# klippfisk/schemas/ in site-packages).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://klippfisk.dev/schemas/"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every form the compiler reads and the one it writes."""
    return {
        "job.schema.json": _document(
            _tighten(Job.model_json_schema(mode="serialization")),
            "job.schema.json",
            "Canonical Klippfisk job (Bacalhau v1 model, as the compiler writes it)",
        ),
        "job-input.schema.json": _document(
            Job.model_json_schema(mode="validation"),
            "job-input.schema.json",
            "Bacalhau v1 job as people write it (keys also match case-insensitively)",
        ),
        "legacy-job.schema.json": _document(
            LegacyJob.model_json_schema(mode="validation"),
            "legacy-job.schema.json",
            "Legacy Bacalhau job envelope (APIVersion V1beta1 or V1beta2)",
        ),
        "ipvm-task.schema.json": _document(
            IpvmTask.model_json_schema(mode="validation", by_alias=True),
            "ipvm-task.schema.json",
            "IPVM task form (with / do)",
        ),
        "minimal.schema.json": _document(
            _any_of(DockerRun, WasmRun, CodeRun),
            "minimal.schema.json",
            "Minimal forms: docker run, wasm run, code runner",
        ),
    }


def shipped() -> dict[str, Path]:
    """File name -> path, for every schema file shipped with the package."""
    return {path.name: path for path in sorted(SCHEMA_DIR.glob("*.schema.json"))}


def _document(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": BASE_ID + name, **schema, "title": title}


def _any_of(*models: type[BaseModel]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    branches = []
    for model in models:
        schema = model.model_json_schema(mode="validation")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        branches.append({"$ref": f"#/$defs/{model.__name__}"})
    return {"anyOf": branches, "$defs": defs}


def _tighten(node: Any) -> Any:
    """Every property required, no null branches: the canonical job always says everything."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _tighten(value) for key, value in node.items() if key != "default"}
    branches = result.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            del result["anyOf"]
            result.update(kept[0])
        else:
            result["anyOf"] = kept
    if result.get("type") == "object" and isinstance(result.get("properties"), dict):
        result["required"] = list(result["properties"])
        result["additionalProperties"] = False
    return result


def render(schema: dict[str, Any]) -> str:
    """The exact text written to disk (stable, so staleness is a plain comparison)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the JSON Schemas of spec.models.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            name
            for name, schema in schemas().items()
            if not (args.dir / name).is_file()
            or (args.dir / name).read_text(encoding="utf-8") != render(schema)
        ]
        for name in stale:
            print(
                f"{args.dir / name} is stale; run python3 -m klippfisk.spec.schema_export",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in write(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
