"""`sentra-lang diff OLD NEW`: which inputs of which actions change their decision.

OLD and NEW are `.sentra` files or git revisions of one (`main:policies/x.sentra`, read with
`git show`, with the files it imports at that revision). Exit codes: 0 done (or equivalent),
1 changes found with `--fail-on-change` (or not equivalent with `--equivalent`), 2 a file that
does not compile, cannot be read, or a git revision that does not hold it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, root_of
from sentra_lang.cli.progress import ProgressLine
from sentra_lang.diagnostics import escape_github, visible_lines

if TYPE_CHECKING:
    from sentra_lang.compiler import Compilation
    from sentra_lang.semdiff import Counterexample, PolicyDiff, Region
    from sentra_lang.source import Span

MARKDOWN_ROWS = 20
"""Changed regions listed per action in a Markdown report (JSON has them all)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff", help="what a policy change does: the inputs whose decision changes",
        description="Compare two versions of a policy: for every action, each region of inputs "
        "whose decision (outcome, rule, risk, threat) changes, with a witness input and both "
        "decisions; settings changes and what they mean. OLD and NEW are files or git "
        "revisions (REV:PATH). Exit 0, or 1 on changes with --fail-on-change; 2 when a "
        "version does not compile or cannot be read.")
    parser.add_argument("old", metavar="OLD", help="the old version: a file, or REV:PATH")
    parser.add_argument("new", metavar="NEW", help="the new version: a file, or REV:PATH")
    parser.add_argument("--format", choices=["human", "json", "markdown", "github"],
                        default="human")
    parser.add_argument("--fail-on-change", action="store_true",
                        help="exit 1 when any decision or setting changes")
    parser.add_argument("--equivalent", action="store_true",
                        help="answer whether the versions decide every sequence of actions "
                        "alike: yes (exit 0), or no with a counterexample (exit 1)")
    parser.add_argument("--progress", action="store_true",
                        help="report how far a long comparison has come on stderr (default: "
                        "when stderr is a terminal)")
    add_color_option(parser)
    add_root_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sentra_lang.semdiff import diff_policies

    root, color = root_of(args), use_color(args.color, sys.stderr)
    old = _compile(args.old, root, color)
    new = _compile(args.new, root, color)
    if old is None or new is None:
        return EXIT_USAGE
    line = ProgressLine(sys.stderr, force=args.progress)
    try:
        diff = diff_policies(old, new, progress=line.show)
    finally:
        line.clear()
    if args.equivalent:
        return _equivalence(diff, args.format)
    sys.stdout.write(_shown(args.format, RENDERERS[args.format](diff)))
    return EXIT_FAILURE if args.fail_on_change and diff.changed else EXIT_OK


def _shown(output: str, text: str) -> str:
    """The rendered diff as written: the policies' text (ids, reasons, versions, witness
    values) with its invisible characters escaped, except in JSON, which escapes its own."""
    return text if output == "json" else visible_lines(text)


def _compile(spec: str, root: Path | None, color: bool) -> Compilation | None:
    """Compile one version, its imports inside `root`; print its errors (exit 2 then) like
    `check`."""
    from sentra_lang.compiler import compile_file
    from sentra_lang.diagnostics import Severity, render_human
    from sentra_lang.loader import FileUnreadable

    try:
        if ":" in spec and not Path(spec).exists():
            result = _compile_revision(spec, root)
        else:
            result = compile_file(spec, analyse=False, root=root)
    except FileUnreadable as error:
        raise UsageError(str(error)) from error
    errors = [d for d in result.sorted_diagnostics() if d.severity is Severity.ERROR]
    for diag in errors:
        print(render_human(diag, color=color), file=sys.stderr)
        print(file=sys.stderr)
    if errors:
        print(f"sentra-lang diff: `{visible_lines(spec)}` does not compile", file=sys.stderr)
        return None
    if result.table is None:
        print(f"sentra-lang diff: `{visible_lines(spec)}` is a library (no `policy` header): nothing to "
              "compare", file=sys.stderr)
        return None
    return result


# ----------------------------------------------------------------------------------- git

def _git(*arguments: str) -> str:
    try:
        done = subprocess.run(["git", *arguments], capture_output=True, check=False)
    except OSError as error:
        raise UsageError(f"cannot run git: {error}") from error
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(message[-1] if message else f"git {' '.join(arguments)} failed")
    return done.stdout.decode("utf-8", "surrogateescape")


def _compile_revision(spec: str, root: Path | None) -> Compilation:
    """Compile `REV:PATH` as git has it at REV, with the files it imports at REV (inside
    `root` as the revision has it).

    The files are written under a temporary folder as `REV:/PATH`, which is how diagnostics
    name them.
    """
    from sentra_lang.compiler import compile_file

    revision, _, path = spec.partition(":")
    if not revision or not path:
        raise UsageError(f"`{spec}` is neither a file nor REV:PATH")
    if path.startswith(("./", "../")):
        path = os.path.normpath(_git("rev-parse", "--show-prefix").strip() + path)
    files = dict(_revision_files(revision, PurePosixPath(path)))
    with tempfile.TemporaryDirectory(prefix="sentra-diff-") as folder:
        base = Path(folder) / f"{revision}:"
        for name, data in files.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        inside = _revision_root(base, root)
        with contextlib.chdir(folder):
            return compile_file(f"{revision}:/{path}", analyse=False, root=inside)


def _revision_root(base: Path, root: Path | None) -> Path | None:
    """`--root` inside a revision written out under `base`: the same folder of the repository."""
    if root is None:
        return None
    top = Path(_git("rev-parse", "--show-toplevel").strip())
    try:
        return base / root.resolve().relative_to(top.resolve())
    except ValueError:
        raise UsageError(f"--root {root}: not inside the git repository {top}") from None


def _revision_files(revision: str, main: PurePosixPath) -> Iterator[tuple[str, bytes]]:
    """The main file and every file it imports (transitively) that exists at the revision,
    with their contents."""
    from sentra_lang import ast
    from sentra_lang.parser import parse

    _git("cat-file", "-e", f"{revision}:{main}")
    seen: set[str] = set()
    queue = [main]
    while queue:
        current = queue.pop()
        name = os.path.normpath(str(current))
        if name in seen or name.startswith(".."):
            continue
        seen.add(name)
        try:
            text = _git("show", f"{revision}:{name}")
        except UsageError:
            continue  # a missing import: the loader reports it as SL111
        yield name, text.encode("utf-8", "surrogateescape")
        module, _ = parse(text, name)
        if module is not None:
            queue += [current.parent / item.path.value for item in module.of_type(ast.Import)]


# ----------------------------------------------------------------------------- rendering

def _verdict_text(decision: Any, waited: int = 0) -> str:
    """A runtime decision in words; ``waited``: the seconds since the diff's first decision
    (`sentra-lang explain`'s time), at which this one was made."""
    if decision is None:
        return "?"
    from sentra_runtime.policy import duration_text

    from sentra_lang.keywords import FIXED_TIME

    text = f"{decision.label} ({decision.rule_id}"
    if decision.attempted_risk:
        text += f", risk {decision.attempted_risk}"
    if decision.threat:
        text += f", threat {decision.threat}"
    if decision.decayed:
        text += f", decayed {decision.decayed}"
    if decision.expires_at is not None:
        lifetime = round(decision.expires_at - FIXED_TIME) - waited
        text += f", ticket expires after {duration_text(lifetime)}"
    return text + ")"


def _headline(diff: PolicyDiff) -> str:
    info = diff.to_dict()
    old, new = info["old"], info["new"]
    return (f"{old['file']} ({old['name']} {old['version']}) -> "
            f"{new['file']} ({new['name']} {new['version']})")


def _action_title(action: Any) -> str:
    status = f" ({action.status})" if action.status in ("added", "removed") else ""
    return f"{action.action}{status}"


def _summary(diff: PolicyDiff) -> str:
    changed = [a for a in diff.actions if a.changes]
    if not diff.changed:
        return "no decision changes"
    parts = [f"{len(diff.changes)} changed region{'s' if len(diff.changes) != 1 else ''} in "
             f"{len(changed)} action{'s' if len(changed) != 1 else ''}"]
    if diff.settings:
        parts.append(f"{len(diff.settings)} setting change{'s' if len(diff.settings) != 1 else ''}")
    skipped = [a for a in diff.actions if a.skipped]
    if skipped:
        parts.append(f"{len(skipped)} action{'s' if len(skipped) != 1 else ''} not compared")
    return ", ".join(parts)


def render_human(diff: PolicyDiff) -> str:
    lines = [f"diff {_headline(diff)}", ""]
    if diff.settings:
        lines.append("settings:")
        lines += [f"  {s.name} {s.before} -> {s.after}: {s.meaning}" for s in diff.settings]
        lines.append("")
    if diff.inputs:
        lines.append("input declarations:")
        lines += [f"  {line}" for line in diff.inputs]
        lines.append("")
    for action in diff.actions:
        if action.skipped:
            lines += [f"{_action_title(action)}: not compared: {action.skipped}", ""]
        if not action.changes:
            continue
        count = len(action.changes)
        lines.append(f"{_action_title(action)}: {count} changed region{'s' if count != 1 else ''}")
        for region in action.changes:
            lines += _human_region(region)
        lines.append("")
    if diff.approximate:
        lines += [f"note: the normalisation of {', '.join(f'`{n}`' for n in diff.approximate)} "
                  "changes; inputs of those fields were compared by case and space variants "
                  "of their constants, not exhaustively", ""]
    lines.append(_summary(diff))
    return "\n".join(lines) + "\n"


def _witness_text(region: Region) -> str:
    """The witness; for "any other action" with the action type it is sent with."""
    from sentra_lang.diagnostics import format_witness
    from sentra_lang.semdiff import OTHER_ACTION

    text = format_witness(region.witness)
    return f"action `{region.raw}`, {text}" if region.action == OTHER_ACTION else text


def _human_region(region: Region) -> list[str]:
    lines = [f"  {region.before.describe()} -> {region.after.describe()}",
             f"    witness: {_witness_text(region)}",
             f"    before:  {_verdict_text(region.old)}",
             f"    after:   {_verdict_text(region.new)}"]
    if region.span is not None:
        lines.append(f"    at {region.span}")
    return lines


def render_json(diff: PolicyDiff) -> str:
    return json.dumps(diff.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _text(text: object) -> str:
    """Policy text in a Markdown table cell or line, shown as written (`markdown.escape`; an
    `@` escaped too, so that it mentions no one on GitHub; `<` and `&` as HTML entities, since
    GitHub renders the HTML of a comment)."""
    import html

    from sentra_lang.markdown import escape

    shown = escape(visible_lines(str(text)).replace("\n", " ")).replace("@", "\\@")
    return html.escape(shown, quote=False)


def _code(text: str) -> str:
    """Policy text as a code span in a Markdown table cell (a `|` in it escaped, as GitHub's
    tables require even inside code)."""
    from sentra_lang.markdown import code_span

    return code_span(text).replace("|", "\\|")


def render_markdown(diff: PolicyDiff) -> str:
    """A pull-request comment: every text of the policies (names, versions, values, reasons,
    threats) is a code span or escaped, so a policy cannot put a link, an image or a mention
    into the comment."""
    info = diff.to_dict()
    old, new = info["old"], info["new"]
    lines = [f"### Policy diff: {_code(old['name'])} {_text(old['version'])} → "
             f"{_text(new['version'])}", "",
             f"**{_summary(diff)}** ({_code(old['file'])} → {_code(new['file'])})", ""]
    if diff.settings:
        lines += ["| setting | before | after | what it means |", "|---|---|---|---|"]
        lines += [f"| {_code(s.name)} | {_text(s.before)} | {_text(s.after)} | {_text(s.meaning)} |"
                  for s in diff.settings]
        lines.append("")
    if diff.inputs:
        lines += [f"- {_code(line)}" for line in diff.inputs] + [""]
    for action in diff.actions:
        if action.skipped:
            lines += [f"**{_code(action.action)}**: not compared ({_text(action.skipped)})", ""]
        if not action.changes:
            continue
        status = f" ({action.status})" if action.status in ("added", "removed") else ""
        lines += [f"#### {_code(action.action)}{status}", "",
                  "| input (witness) | before | after |", "|---|---|---|"]
        for region in action.changes[:MARKDOWN_ROWS]:
            lines.append(f"| {_code(_witness_text(region))} | "
                         f"{_text(_verdict_text(region.old))} | {_text(_verdict_text(region.new))} |")
        hidden = len(action.changes) - MARKDOWN_ROWS
        if hidden > 0:
            lines.append(f"| … and {hidden} more (`sentra-lang diff --format json`) | | |")
        lines.append("")
    if diff.approximate:
        lines += [f"> The normalisation of {', '.join(_code(n) for n in diff.approximate)} "
                  "changes: inputs of those fields were compared by variants, not exhaustively.",
                  ""]
    return "\n".join(lines)


def _annotation(span: Span | None, title: str, message: str) -> str:
    props = [f"title={escape_github(title, property_value=True)}"]
    if span is not None:
        props = [f"file={escape_github(span.path, property_value=True)}", f"line={span.line}",
                 f"col={span.column}", f"endLine={span.end_line}",
                 f"endColumn={span.end_column}"] + props
    return f"::notice {','.join(props)}::{escape_github(message)}"


def render_github(diff: PolicyDiff) -> str:
    lines = []
    header = diff.new.model.header_span if diff.new.model is not None else None
    for setting in diff.settings:
        lines.append(_annotation(header, "setting change",
                                 f"{setting.name} {setting.before} -> {setting.after}: "
                                 f"{setting.meaning}"))
    for region in diff.changes:
        lines.append(_annotation(
            region.span, f"decision change: {region.action}",
            f"{region.action}: {region.before.describe()} -> {region.after.describe()} "
            f"for {_witness_text(region)}"))
    lines.append(_summary(diff))
    return "\n".join(lines) + "\n"


RENDERERS = {"human": render_human, "json": render_json, "markdown": render_markdown,
             "github": render_github}


def _equivalence(diff: PolicyDiff, output: str) -> int:
    found = diff.counterexample()
    skipped = [a.action for a in diff.actions if a.skipped]
    if output == "json":
        data: dict[str, Any] = {"equivalent": found is None and not skipped,
                                "counterexample": found.to_dict() if found else None,
                                "not_compared": skipped}
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(visible_lines(_equivalence_text(found, skipped)))
    return EXIT_OK if found is None and not skipped else EXIT_FAILURE


def _equivalence_text(found: Counterexample | None, skipped: list[str]) -> str:
    from sentra_runtime.policy import duration_text

    from sentra_lang.diagnostics import format_witness

    if found is None and not skipped:
        return "equivalent: every action and input, in any sequence, is decided alike\n"
    if found is None:
        return (f"not known to be equivalent: {', '.join(f'`{a}`' for a in skipped)} could "
                "not be compared exactly\n")
    agent = "one agent" if found.agent is None else f"agent `{found.agent}`"
    if found.assigned is not None:
        agent += f", assigned to group `{found.assigned}` by an operator"
    lines = [f"not equivalent; counterexample ({agent}, from a clean record):"]
    waited = 0
    for number, step in enumerate(found.steps, start=1):
        action = step.action or '""'
        wait = f"after {duration_text(step.after)}: " if step.after else ""
        waited += step.after
        lines.append(f"  {number}. {wait}{action} {format_witness(step.fields)}")
        lines.append(f"     old: {_verdict_text(step.old, waited)}")
        lines.append(f"     new: {_verdict_text(step.new, waited)}")
    return "\n".join(lines) + "\n"
