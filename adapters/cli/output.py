"""Rendering for the CLI: tables for people, JSON or YAML for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

__all__ = ["FORMATS", "emit", "table"]

FORMATS = ("table", "json", "yaml")


def emit(data: Any, fmt: str, out: TextIO | None = None) -> None:
    """Write `data` as JSON or YAML (block style, keys in the order given)."""
    stream = out or sys.stdout
    if fmt == "yaml":
        yaml.safe_dump(data, stream, sort_keys=False, allow_unicode=True, default_flow_style=False)
    else:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.write("\n")


def table(rows: Sequence[Sequence[Any]], columns: Sequence[str], out: TextIO | None = None) -> None:
    """Write an aligned plain-text table with upper-case headers, like Bacalhau's CLI."""
    stream = out or sys.stdout
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
        stream.write(line.rstrip() + "\n")
