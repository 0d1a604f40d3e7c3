"""``program_arguments`` and ``command``: templating, optional blocks, and the runtime flags.

Both strings are rendered in the job's own context:

- ``${{inputs.x}}`` of a literal input and ``${{parent.inputs.x}}`` of a literal pipeline input are
  replaced by the value (Python's ``str``: ``True``, ``0.01``);
- ``${{inputs.x}}`` of a data input and ``${{outputs.y}}`` stay, written canonically (no spaces), for
  the agent to replace with local paths on the node;
- ``$[[ ... ]]`` is Azure ML's optional block: dropped when an input it uses has no value, kept without
  the brackets otherwise. An input without value outside such a block is an error.

``program_arguments`` is split into argv tokens (shell rules, ``shlex``) *before* literal values are
substituted, so a value with spaces stays one argument. The runtime flags of a parallel job
(``--error_threshold`` ...) are then read from the tokens into typed settings; the tokens are kept, so
the entry script sees them too, as in Azure ML. Unknown flags reach the script unchanged; one that
looks like a misspelt runtime flag (the seed's ``--resource_monitor_interva``) gets a warning, and so
does an Azure ML runtime name Fanout does not read there (``--mini_batch_size``: see
:mod:`shared.spec.script_flags`) and a first argument that is not a flag (v1 rejected both; Fanout
warns, because the script still receives them and a v2 spec may rely on that).
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.plan import AppendRowFormat, DataInput
from shared.spec.bindings import OPTIONAL_BLOCK_RE, Expr, find_expressions, substitute
from shared.spec.issues import Issues, Position, Where, suggest
from shared.spec.pipeline_io import PipelineInput
from shared.spec.script_flags import RESERVED_FLAGS
from shared.spec.values import Value


class _Broken(Exception):
    """An input whose own error was already reported was referenced."""


class _Missing(Exception):
    """An optional input without value was referenced."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Scope:
    """What a job's strings may refer to."""

    inputs: Mapping[str, Value]
    outputs: frozenset[str]
    pipeline: Mapping[str, PipelineInput]


def _render(expr: Expr, scope: Scope) -> str:
    """The text an expression stands for. Raises _Missing, or ValueError(message, expected)."""
    if expr.kind == "input":
        if expr.name not in scope.inputs:
            raise ValueError(f"the job has no input '{expr.name}'", suggest(expr.name, scope.inputs))
        value = scope.inputs[expr.name]
        if value.broken:
            raise _Broken
        if value.plan is None:
            raise _Missing(expr.name)
        return expr.canonical if isinstance(value.plan, DataInput) else str(value.plan.value)
    if expr.kind == "output":
        if expr.name not in scope.outputs:
            raise ValueError(f"the job has no output '{expr.name}'", suggest(expr.name, scope.outputs))
        return expr.canonical
    if expr.kind == "parent_input":
        if expr.name not in scope.pipeline:
            raise ValueError(f"the pipeline has no input '{expr.name}'", suggest(expr.name, scope.pipeline))
        found = scope.pipeline[expr.name].value
        if found.broken:
            raise _Broken
        plan = found.plan
        if plan is None:
            raise _Missing(expr.name)
        if isinstance(plan, DataInput):
            raise ValueError(
                f"{expr} is data; bind it to a job input first",
                f"inputs: {{{expr.name}: {expr.canonical}}} and ${{{{inputs.{expr.name}}}}} here",
            )
        return str(plan.value)
    raise ValueError(
        f"{expr} cannot be used here", "${{inputs.<x>}}, ${{outputs.<y>}} or ${{parent.inputs.<x>}}"
    )


def _syntax_ok(text: str, where: Where, issues: Issues) -> bool:
    ok = True
    for found in find_expressions(text):
        if found.error is not None:
            issues.error(where, found.error.message, found.error.expected)
            ok = False
    return ok


def _resolve_blocks(text: str, scope: Scope) -> str:
    """Drop each ``$[[ ... ]]`` that uses an input without value; unwrap the others."""

    def block(match: Any) -> str:
        inner, spaces = str(match.group(1)), str(match.group(2))
        try:
            substitute(inner, lambda e: _render(e, scope))
        except _Missing:
            return ""
        except (ValueError, _Broken):
            return inner + spaces  # reported when the kept text is rendered
        return inner + spaces

    return OPTIONAL_BLOCK_RE.sub(block, text)


def _substitute_checked(text: str, scope: Scope, where: Where, issues: Issues) -> str | None:
    ok = True

    def one(expr: Expr) -> str:
        nonlocal ok
        try:
            return _render(expr, scope)
        except _Broken:
            pass
        except _Missing as missing:
            issues.error(
                where,
                f"input '{missing.name}' is optional and has no value",
                f"a value for it, or an optional block $[[ ... {expr.canonical} ... ]]",
            )
        except ValueError as exc:
            message, expected = exc.args if len(exc.args) == 2 else (str(exc), "")
            issues.error(where, message, expected)
        ok = False
        return expr.canonical

    rendered = substitute(text, one)
    return rendered if ok else None


def render_text(text: str, scope: Scope, where: Where, issues: Issues) -> str | None:
    """``text`` with optional blocks resolved and every expression rendered (None when invalid)."""
    if not _syntax_ok(text, where, issues):
        return None
    canonical = substitute(text, lambda e: e.canonical)
    return _substitute_checked(_resolve_blocks(canonical, scope), scope, where, issues)


def split_arguments(text: str, scope: Scope, where: Where, issues: Issues) -> list[str] | None:
    """``program_arguments`` as argv tokens, literals substituted, data placeholders kept."""
    if not _syntax_ok(text, where, issues):
        return None
    template = _resolve_blocks(substitute(text, lambda e: e.canonical), scope)
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        issues.error(where, f"program_arguments cannot be split: {exc}", "balanced quotes")
        return None
    result: list[str] = []
    ok = True
    for token in tokens:
        rendered = _substitute_checked(token, scope, where, issues)
        if rendered is None:
            ok = False
            continue
        result.append(rendered)
    return result if ok else None


# --- runtime flags -------------------------------------------------------------------------------


def _int_in(low: int, high: int | None) -> Callable[[str], Any]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"an integer{_range(low, high)}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"an integer{_range(low, high)}")
        return value

    return parse


def _range(low: int, high: int | None) -> str:
    return f" ≥ {low}" if high is None else f" in [{low}, {high}]"


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("a number in [0, 100]") from None
    if not 0 <= value <= 100:
        raise ValueError("a number in [0, 100]")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError("True or False")


def _file_name(text: str) -> str:
    if not text or any(c in text for c in '~"#%&*:<>?/\\{|}'):
        raise ValueError('a file name without any of ~"#%&*:<>?/\\{|}')
    return text


def _row_format(text: str) -> AppendRowFormat:
    try:
        return AppendRowFormat(text.strip().lower())
    except ValueError:
        raise ValueError("azureml, csv or jsonl") from None


#: Runtime flags read into ParallelSettings: flag -> (setting name, parser of the value).
RUNTIME_FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--error_threshold": ("error_threshold", _int_in(-1, None)),
    "--allowed_failed_percent": ("allowed_failed_percent", _percent),
    "--task_overhead_timeout": ("task_overhead_timeout", _int_in(1, 259200)),
    "--progress_update_timeout": ("progress_update_timeout", _int_in(1, 259200)),
    "--first_task_creation_timeout": ("first_task_creation_timeout", _int_in(1, 259200)),
    "--copy_logs_to_parent": ("copy_logs_to_parent", _boolean),
    "--resource_monitor_interval": ("resource_monitor_interval", _int_in(0, None)),
    "--append_row_dataframe_header": ("append_row_dataframe_header", _boolean),
    "--append_row_file_name": ("append_row_file_name", _file_name),
    "--append_row_format": ("append_row_format", _row_format),
}
#: Azure ML runtime flags Fanout accepts and ignores (they still reach the script).
IGNORED_FLAGS = ("--metrics_name_prefix", "--push_metrics_to_parent")
_DEFAULTS = {
    "error_threshold": "-1",
    "allowed_failed_percent": "100",
    "task_overhead_timeout": "600",
    "progress_update_timeout": "3 × (retry timeout + task_overhead_timeout)",
    "first_task_creation_timeout": "600",
    "copy_logs_to_parent": "False",
    "resource_monitor_interval": "600",
    "append_row_dataframe_header": "False",
    "append_row_file_name": "parallel_run_step.txt",
    "append_row_format": "azureml",
}


def parse_runtime_flags(tokens: list[str], where: Where, issues: Issues) -> dict[str, Any]:
    """The runtime settings named by flags in ``tokens`` (errors and warnings recorded at each token)."""
    settings: dict[str, Any] = {}
    seen: dict[str, str] = {}
    start = cursor = where.source.position(where.path)
    if tokens and not tokens[0].startswith("-"):
        issues.warn(
            where,
            f"the first argument {tokens[0]!r} is not a flag: Azure ML v1 rejected such arguments; "
            "Fanout passes it to the entry script as written",
            "arguments that start with a flag: --<name> <value>",
            at=where.source.find(start, tokens[0]) or start,
        )
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("--"):
            continue
        flag, has_inline, inline = token.partition("=")
        found = where.source.find(cursor, flag)
        at = found or start
        if found is not None:
            cursor = Position(found.line, found.column + len(flag))
        if flag in IGNORED_FLAGS:
            issues.warn(
                where, f"{flag} is accepted but ignored by Fanout (it still reaches the script)", at=at
            )
            continue
        if flag in RESERVED_FLAGS:
            issues.warn(
                where,
                f"{flag} in program_arguments has no effect on the job: Fanout does not read it there "
                "(the entry script still receives it)",
                RESERVED_FLAGS[flag],
                at=at,
            )
            continue
        if flag not in RUNTIME_FLAGS:
            _warn_if_misspelt(flag, where, issues, at)
            continue
        setting, parse = RUNTIME_FLAGS[flag]
        if has_inline:
            value: str | None = inline
        elif index < len(tokens) and not tokens[index].startswith("--"):
            value = tokens[index]
            index += 1
        else:
            value = None
        if value is None or not value.strip():
            issues.error(where, f"{flag} needs a value", f"{flag} <value>", at=at)
            continue
        if "${{" in value:
            issues.error(
                where, f"{flag} needs a literal value, got {value}", "a number or a literal input", at=at
            )
            continue
        try:
            parsed = parse(value)
        except ValueError as exc:
            issues.error(where, f"{flag} {value!r} is not valid", str(exc), at=at)
            continue
        if flag in seen and seen[flag] != value:
            issues.warn(where, f"{flag} is given twice; the last value ({value}) is used", at=at)
        seen[flag] = value
        settings[setting] = parsed
    return settings


def _warn_if_misspelt(flag: str, where: Where, issues: Issues, at: Position) -> None:
    names = list(RUNTIME_FLAGS) + list(IGNORED_FLAGS)
    close = difflib.get_close_matches(flag, names, n=1, cutoff=0.85)
    prefix = [name for name in names if len(flag) >= 8 and name.startswith(flag)]
    match = close[0] if close else (prefix[0] if prefix else None)
    if match is None:
        return
    setting = RUNTIME_FLAGS[match][0] if match in RUNTIME_FLAGS else ""
    default = f" and {setting} keeps its default ({_DEFAULTS[setting]})" if setting else ""
    issues.warn(
        where,
        f"{flag} is not a runtime flag (did you mean {match}?); it is passed to the entry script "
        f"unchanged{default}",
        at=at,
    )
