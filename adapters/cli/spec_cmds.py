"""`klippfisk spec ...`: validate, compile, diff, schema and explain job documents.

Exit codes follow the CLI contract: 0 valid / identical, 1 invalid / different, 2 usage or
I/O (a file that cannot be read, a URL that cannot be fetched, an unknown profile name).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from klippfisk.adapters.cli import EXIT_BAD, EXIT_OK, EXIT_USAGE
from klippfisk.adapters.cli.output import emit
from klippfisk.spec import PROFILES, CompiledSpec, LoadError, SpecError, compile_document
from klippfisk.spec.explain import explain
from klippfisk.spec.schema_export import shipped
from klippfisk.spec.sources import read_source
from klippfisk.spec.template import variables_from

__all__ = ["UsageError", "compile_options", "load_compiled", "register"]


def register(subparsers: Any) -> None:
    """Add the `spec` command group."""
    group = subparsers.add_parser("spec", help="validate, compile, diff and explain job specs")
    commands = group.add_subparsers(dest="spec_command", metavar="COMMAND")
    commands.required = True

    validate = commands.add_parser("validate", help="check job files; exit 1 if any is invalid")
    validate.add_argument("files", nargs="+", metavar="FILE", help="path, URL, or - for stdin")
    compile_options(validate, formats=("text", "json"), default="text")
    validate.set_defaults(func=_validate)

    compile_ = commands.add_parser("compile", help="print the canonical job, CIDs and report")
    compile_.add_argument("file", metavar="FILE", help="path, URL, or - for stdin")
    compile_options(compile_, formats=("yaml", "json"), default="yaml")
    compile_.set_defaults(func=_compile)

    diff = commands.add_parser("diff", help="semantic diff of two jobs; exit 1 if they differ")
    diff.add_argument("left", metavar="A")
    diff.add_argument("right", metavar="B")
    compile_options(diff, formats=("text", "json"), default="text")
    diff.set_defaults(func=_diff)

    schema = commands.add_parser("schema", help="print a JSON Schema of the job forms")
    schema.add_argument("name", nargs="?", default="job", help="job (default), " + _schema_names())
    schema.set_defaults(func=_schema)

    explain_ = commands.add_parser("explain", help="describe a field, e.g. Tasks.Resources.CPU")
    explain_.add_argument("field", metavar="FIELD")
    explain_.add_argument("--output", "-o", choices=("text", "json", "yaml"), default="text")
    explain_.set_defaults(func=_explain)


def compile_options(
    parser: argparse.ArgumentParser, formats: tuple[str, ...], default: str
) -> None:
    """Add --output, --profile and the templating options: every command that compiles a
    document (here and `job run`) takes them the same way."""
    parser.add_argument("--output", "-o", choices=formats, default=default)
    parser.add_argument(
        "--profile", default="klippfisk", help="default profile: " + ", ".join(PROFILES)
    )
    parser.add_argument(
        "-V",
        "--template-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="render the file as a template with this variable (repeatable)",
    )
    parser.add_argument(
        "-E",
        "--template-envs",
        metavar="REGEX",
        help="render the file as a template with environment variables whose names match",
    )


def _schema_names() -> str:
    return ", ".join(name.removesuffix(".schema.json") for name in shipped())


class UsageError(Exception):
    """A usage or I/O fault (unreadable file, unknown profile): exit 2 with this message."""


def load_compiled(ref: str, args: argparse.Namespace) -> CompiledSpec:
    """Read and compile one document as the options of `compile_options` ask.

    I/O faults raise UsageError, faults of the document itself SpecError, so each command
    maps them to its exit codes the same way.
    """
    if args.profile not in PROFILES:
        raise UsageError(f"unknown profile {args.profile!r}; use one of: {', '.join(PROFILES)}")
    try:
        data, source = read_source(ref)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    variables = None
    if args.template_vars or args.template_envs:
        try:
            # -E asks for the user's own shell variables by name, as `bacalhau job run -E`
            # does: that is input to this command, not configuration, so it does not go
            # through the settings object.
            variables = variables_from(args.template_vars, args.template_envs, os.environ)
        except SpecError as exc:
            raise UsageError(str(exc)) from None
    return compile_document(data, source=source, profile=args.profile, variables=variables)


def _validate(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    status = EXIT_OK
    for ref in args.files:
        try:
            compiled = load_compiled(ref, args)
        except UsageError as exc:
            return _usage(str(exc))
        except SpecError as exc:
            status = EXIT_BAD
            results.append({"source": exc.source, "valid": False, **exc.to_dict()})
            continue
        results.append(
            {
                "source": compiled.source,
                "valid": True,
                "job_cid": compiled.job_cid,
                "warnings": [w.to_dict() for w in compiled.report.warnings],
            }
        )
    if args.output == "json":
        emit(results, "json")
    else:
        for result in results:
            _print_result(result)
    return status


def _print_result(result: dict[str, Any]) -> None:
    source = result["source"]
    if result["valid"]:
        print(f"{source}: valid ({result['job_cid']})")
    for item in result.get("problems", []) + result.get("warnings", []):
        where = f"{item['line']}:{item['column'] or 1}: " if item.get("line") else ""
        label = "warning " + item["code"] + ": " if "problems" not in result else ""
        hint = f" ({item['hint']})" if item.get("hint") else ""
        print(f"{source}:{where}{label}{item['pointer'] or '/'}: {item['message']}{hint}")
    if not result["valid"]:
        print(f"{source}: invalid, {len(result['problems'])} problem(s)")


def _compile(args: argparse.Namespace) -> int:
    try:
        compiled = load_compiled(args.file, args)
    except UsageError as exc:
        return _usage(str(exc))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD
    emit(compiled.to_dict(), args.output)
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    try:
        left, right = load_compiled(args.left, args), load_compiled(args.right, args)
    except UsageError as exc:
        return _usage(str(exc))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    changes = list(_changes(left.job, right.job, ""))
    if args.output == "json":
        emit(
            {
                "same": not changes,
                "job_cids": [left.job_cid, right.job_cid],
                "changes": [{"pointer": p, "left": a, "right": b} for p, a, b in changes],
            },
            "json",
        )
    else:
        for pointer, old, new in changes:
            print(f"~ {pointer}: {_shown(old)} -> {_shown(new)}")
    return EXIT_BAD if changes else EXIT_OK


_MISSING = object()


def _changes(left: Any, right: Any, pointer: str) -> Any:
    """(pointer, left, right) for every leaf that differs between two canonical jobs."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys()):
            token = key.replace("~", "~0").replace("/", "~1")
            yield from _changes(
                left.get(key, _MISSING), right.get(key, _MISSING), f"{pointer}/{token}"
            )
    elif isinstance(left, list) and isinstance(right, list):
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else _MISSING
            b = right[index] if index < len(right) else _MISSING
            yield from _changes(a, b, f"{pointer}/{index}")
    elif left != right:
        yield pointer or "/", left, right


def _shown(value: Any) -> str:
    return "(absent)" if value is _MISSING else repr(value)


def _schema(args: argparse.Namespace) -> int:
    """Print a shipped schema file as it is (the staleness test holds it to the models)."""
    available = shipped()
    name = args.name if args.name.endswith(".schema.json") else f"{args.name}.schema.json"
    if name not in available:
        return _usage(f"no schema {args.name!r}; choose one of: {_schema_names()}")
    sys.stdout.write(available[name].read_text(encoding="utf-8"))
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    try:
        found = explain(args.field)
    except SpecError as exc:
        problem = exc.problems[0]
        return _usage(f"{problem.message} {problem.hint}")
    if args.output != "text":
        emit(found.to_dict(), args.output)
        return EXIT_OK
    print(f"FIELD:   {found.path}\nTYPE:    {found.type}\n")
    print(f"DESCRIPTION:\n  {found.description}\n")
    for profile, value in found.defaults.items():
        print(f"DEFAULT ({profile}): {value}")
    if found.fields:
        print("\nFIELDS:")
        width = max(len(n) for n, _, _ in found.fields)
        for name, type_name, description in found.fields:
            print(f"  {name.ljust(width)}  <{type_name}>  {description}")
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"klippfisk spec: {message}", file=sys.stderr)
    return EXIT_USAGE
