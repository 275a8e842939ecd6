"""The Go text/template subset that `bacalhau job run` documents for job files.

Bacalhau renders a job file as a Go template over a flat map of strings (from `-V key=value`
and from environment variables whose names match `-E pattern`) before parsing it. The forms
its documentation shows are supported exactly: `{{.key}}`, `{{ index . "key" }}`,
`{{ or .key "default" }}` and `{{ or (index . "key") "default" }}`, plus Go's `{{- -}}`
whitespace trimming and `{{/* comments */}}`. Anything else (if, range, pipes, functions) is
refused with a clear error rather than half-rendered. Like Bacalhau (missingkey=error), a
missing key is an error; inside `or` a missing key is empty, so the default applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from klippfisk.spec.errors import Problem, TemplateError
from klippfisk.spec.limits import DEFAULT_LIMITS, LoadLimits, size_limit_error

__all__ = ["render", "variables_from"]

_SUPPORTED = '{{.key}}, {{index . "key"}} and {{or .key "default"}}'
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<field>(?:\.[A-Za-z_]\w*)+)
      | (?P<dot>\.)
      | (?P<word>[A-Za-z_]\w*)
      | (?P<paren>[()])
      | (?P<close>-?\}\})
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "'": "'"}  # fmt: skip
_COMMENT = re.compile(r"\s*/\*.*?\*/\s*(-?)\}\}", re.DOTALL)
_MAX_PARENS = 8  # `or (index . "k") "d"` needs one; more is surely a mistake
_MAX_PROBLEMS = 50  # enough to fix a file in one go; a runaway file is not listed in full
_NO_ENVIRONMENT: Mapping[str, str] = MappingProxyType({})
_GO_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")


def render(
    text: str,
    variables: Mapping[str, str],
    *,
    source: str = "<input>",
    limits: LoadLimits | None = None,
) -> str:
    """`text` with every action replaced by its value; raises TemplateError listing every fault.

    The result is held to the loader's size limit as it grows: a thousand `{{.big}}` actions
    could otherwise turn a small file into gigabytes before the loader ever sees it.
    """
    limits = limits or DEFAULT_LIMITS
    if len(text) > limits.max_bytes:
        raise size_limit_error(source, limits)
    if "{{" not in text:
        return text
    renderer = _Renderer(text, variables)
    output = renderer.run(limits.max_bytes)
    if output is None:
        raise size_limit_error(source, limits)
    if renderer.problems:
        raise TemplateError(renderer.problems, source)
    return output


def variables_from(
    pairs: Sequence[str],
    env_pattern: str | None = None,
    environ: Mapping[str, str] = _NO_ENVIRONMENT,
) -> dict[str, str]:
    """Template variables as `bacalhau job run` builds them: variables of `environ` whose name
    matches `env_pattern` (a regex searched in the name; "*" means all), then `key=value`
    pairs, which win over the environment.

    The caller hands over the environment (the CLI passes its process environment for `-E`);
    without one a pattern matches nothing. The compiler reads no process state of its own, so
    the same call means the same thing in a test, a server or a command line."""
    variables: dict[str, str] = {}
    if env_pattern:
        try:
            pattern = re.compile(".*" if env_pattern == "*" else env_pattern)
        except re.error as exc:
            raise _error(
                f"the environment pattern {env_pattern!r} is not a valid regular expression "
                f"({exc})",
                'Give a regular expression over variable names, e.g. "^JOB_".',
            ) from None
        variables.update({k: v for k, v in environ.items() if pattern.search(k)})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _error(
                f"the template variable {pair!r} is not of the form key=value",
                "Write it as key=value, e.g. -V region=eu-west-1.",
            )
        variables[key] = value
    return variables


@dataclass(frozen=True)
class _Lookup:
    """A value that may be missing; `key` names what was looked up, for the error."""

    value: str | None
    key: str = ""


class _ActionError(Exception):
    """One action cannot be rendered; the renderer records it and carries on."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Renderer:
    """Walks the text action by action, collecting every problem instead of stopping at one."""

    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self._text = text
        self._variables = variables
        self.problems: list[Problem] = []

    def run(self, max_size: int) -> str | None:
        """The rendered text, or None as soon as it grows past `max_size` characters."""
        text = self._text
        out: list[str] = []
        size = 0
        position = 0
        trim_next = False
        while (start := text.find("{{", position)) >= 0:
            literal = text[position:start]
            if trim_next:
                literal = literal.lstrip()
            trim_left = text[start + 2 : start + 3] == "-" and text[start + 3 : start + 4].isspace()
            out.append(literal.rstrip() if trim_left else literal)
            size += len(out[-1])
            body_start = start + (4 if trim_left else 2)
            try:
                value, position, trim_next = self._action(body_start)
                out.append(value)
                size += len(value)
            except _ActionError as exc:
                self._problem(start, exc.message, exc.hint)
                position, trim_next = self._skip_action(body_start), False
            if size > max_size:
                return None
            if len(self.problems) >= _MAX_PROBLEMS:
                break
        rest = text[position:]
        out.append(rest.lstrip() if trim_next else rest)
        return "".join(out)

    def _action(self, at: int) -> tuple[str, int, bool]:
        """Renders the action whose body starts at `at`: (value, end offset, trim after)."""
        comment = _COMMENT.match(self._text, at)
        if comment:
            return "", comment.end(), comment.group(1) == "-"
        tokens, end, trim_right = self._lex(at)
        parser = _Parser(tokens, self._variables)
        result = parser.command()
        if parser.remaining():
            raise _unsupported(self._text[at:end].removesuffix("}}").rstrip("-"))
        if result.value is None:
            raise _ActionError(
                f"the template variable {result.key!r} has no value",
                f"Pass it with -V {result.key}=value, or give a default: "
                f'{{{{ or .{result.key} "default" }}}}.',
            )
        return result.value, end, trim_right

    def _lex(self, at: int) -> tuple[list[tuple[str, str]], int, bool]:
        tokens: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(self._text, at):
            kind = match.lastgroup or "other"
            token = match.group()
            if kind == "close":
                trimmed = token.startswith("-")
                if trimmed and not (tokens and tokens[-1][0] == "space"):
                    raise _unsupported(self._text[at : match.end()])
                return [t for t in tokens if t[0] != "space"], match.end(), trimmed
            tokens.append((kind, token))
        raise _ActionError(
            "a template action is opened with {{ but never closed",
            "Close it with }}, or write the braces as {{`{{`}} if they are meant literally.",
        )

    def _skip_action(self, at: int) -> int:
        end = self._text.find("}}", at)
        return len(self._text) if end < 0 else end + 2

    def _problem(self, offset: int, message: str, hint: str) -> None:
        line = self._text.count("\n", 0, offset) + 1
        column = offset - (self._text.rfind("\n", 0, offset) + 1) + 1
        self.problems.append(Problem("", message, hint, line, column, "template"))


class _Parser:
    """Evaluates one action's tokens: command := operand | index . "k" | or operand+."""

    def __init__(self, tokens: list[tuple[str, str]], variables: Mapping[str, str]) -> None:
        self._tokens = tokens
        self._variables = variables
        self._at = 0
        self._depth = 0

    def remaining(self) -> bool:
        return self._at < len(self._tokens)

    def command(self) -> _Lookup:
        kind, token = self._peek()
        if kind == "word" and token == "index":
            self._at += 1
            return self._index()
        if kind == "word" and token == "or":
            self._at += 1
            return self._or()
        return self._operand()

    def _operand(self) -> _Lookup:
        kind, token = self._next()
        if kind == "field" and token.count(".") == 1:
            key = token[1:]
            return _Lookup(self._variables.get(key), key)
        if kind in ("string", "raw"):
            return _Lookup(_unquote(token))
        if kind == "paren" and token == "(":
            self._depth += 1
            if self._depth > _MAX_PARENS:
                raise _unsupported("(" * _MAX_PARENS)
            inner = self.command()
            self._depth -= 1
            if self._next() != ("paren", ")"):
                raise _unsupported(token)
            return inner
        raise _unsupported(token)

    def _index(self) -> _Lookup:
        if self._next()[0] != "dot":
            raise _unsupported("index")
        kind, token = self._next()
        if kind not in ("string", "raw"):
            raise _unsupported(f"index . {token}")
        key = _unquote(token)
        return _Lookup(self._variables.get(key), key)

    def _or(self) -> _Lookup:
        arguments = []
        while self._peek()[0] in ("field", "string", "raw") or self._peek() == ("paren", "("):
            arguments.append(self._operand())
        if not arguments:
            raise _unsupported("or")
        for argument in arguments:
            if argument.value:
                return argument
        return _Lookup(arguments[-1].value or "", arguments[-1].key)

    def _peek(self) -> tuple[str, str]:
        return self._tokens[self._at] if self._at < len(self._tokens) else ("", "")

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        self._at += 1
        return token


def _unquote(token: str) -> str:
    """A Go string literal's value: backquoted strings are raw, double-quoted ones escaped."""
    if token.startswith("`"):
        return token[1:-1]
    return _GO_ESCAPE.sub(_escape, token[1:-1])


def _escape(match: re.Match[str]) -> str:
    body = match.group()[1:]
    code = None
    if body[0] in "xuU" and len(body) > 1:  # "\u" without its hex digits is refused below
        code = int(body[1:], 16)
    elif body[0] in "01234567" and len(body) == 3:
        code = int(body, 8)
    if code is not None and code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    if code is None and body in _ESCAPES:
        return _ESCAPES[body]
    raise _ActionError(f"\\{body} is not a valid escape in a template string",
                       'Use \\" for a quote, \\\\ for a backslash, and hex digits after \\x (2), '
                       "\\u (4) or \\U (8), e.g. \\u00e9.")  # fmt: skip


def _unsupported(fragment: str) -> _ActionError:
    return _ActionError(
        f"the template action near {fragment.strip()!r} is not supported",
        f"Klippfisk supports {_SUPPORTED}; write the value out or pass it with -V.",
    )


def _error(message: str, hint: str) -> TemplateError:
    return TemplateError([Problem("", message, hint, code="template")], "<template variables>")
