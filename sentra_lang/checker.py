"""Name resolution and type checking: from parsed files to a checked `Model` of the policy.

Passes run in order over all files of a program; each adds diagnostics and never stops the
others, so every problem in a file is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sentra_runtime import arith
from sentra_runtime.inputs import normalize
from sentra_runtime.policy import DURATION_UNITS, duration_text

from sentra_lang import ast
from sentra_lang.arithmetic import BUILT_IN_PLACEHOLDERS, fold, from_ast
from sentra_lang.diagnostics import Diagnostic, Related, diagnostic, did_you_mean
from sentra_lang.keywords import (
    GROUP_SETTINGS,
    NORMALIZATIONS,
    SETTINGS,
    SIMPLE_TYPES,
    UNDECLARED_FIELDS,
)
from sentra_lang.loader import LoadedFile, Program
from sentra_lang.parser import MAX_NESTING
from sentra_lang.source import NO_SPAN, Span

STATE_PREFIX = "agent"
"""The reserved first part of the agent's state fields (`agent.group`, ...)."""
MAX_EXPANDED_TESTS = 10_000
"""The most tests a condition holds with its named conditions expanded (SL304)."""
NUMERIC = ("int", "number")
TEXTUAL = ("string", "enum")
_INTERPOLATION = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}|[{}]")


@dataclass
class FieldInfo:
    name: str
    type: str  # bool | int | number | string | enum | set
    optional: bool
    default: Any
    has_default: bool
    normalize: list[str]
    values: list[str] | None
    decl: ast.FieldDecl
    main: bool
    used: bool = False

    @property
    def always_present(self) -> bool:
        return self.has_default or not self.optional


@dataclass
class LetInfo:
    name: str
    value: ast.SetLit | ast.Condition
    decl: ast.Let
    main: bool
    used: bool = False

    @property
    def is_set(self) -> bool:
        return isinstance(self.value, ast.SetLit)


@dataclass
class RuleInfo:
    id: str
    generated_id: bool
    outcome: str
    risk: int
    threat: str | None
    reason: str
    description: str | None
    when: ast.Condition | None
    span: Span
    file: LoadedFile
    limit: tuple[int, int] | None = None
    """`limit N per DURATION` on the rule: (N, period in seconds); ``None``: none."""
    expires: int | None = None
    """A `review` rule's `expires DURATION` in seconds (``None``: the policy's
    `review_timeout`)."""


@dataclass
class BlockInfo:
    names: list[str]
    rules: list[RuleInfo]
    span: Span
    limits: list[tuple[int, int]] = field(default_factory=list)
    """The block's `limit N per DURATION` lines: (N, period in seconds), in source order."""


@dataclass
class GroupInfo:
    """A checked `group`: its patterns (exact ids; a trailing `*` is a prefix) and the
    settings it overrides (``None``: the header's)."""

    name: str
    span: Span
    patterns: list[str] = field(default_factory=list)
    risk_threshold: int | None = None
    strikes: int | None = None
    risk_decay: tuple[int, int] | None = None
    limits: list[tuple[str | None, int, int]] = field(default_factory=list)
    """`limit [ACTION] N per DURATION` lines: (the normalised action or ``None`` for every
    action, N, period in seconds), in source order."""


@dataclass
class Model:
    """Everything the compiler needs, resolved and checked."""

    is_policy: bool = False
    name: str = ""
    version: str = ""
    description: str | None = None
    risk_threshold: int = 100
    strikes: int = 3
    action_normalize: list[str] = field(default_factory=list)
    undeclared_fields: str = "refuse"
    undeclared_span: Span | None = None
    """Where the policy says `undeclared_fields` (``None``: it does not, and refuses)."""
    risk_decay: tuple[int, int] | None = None
    """`risk_decay AMOUNT per DURATION`: (amount, period in seconds); ``None``: no decay."""
    review_timeout: int | None = None
    """`review_timeout DURATION` in seconds: how long a `review` ticket waits for an operator
    when its rule gives no `expires` (``None``: not given; the runtime's default is 24h)."""
    fields: dict[str, FieldInfo] = field(default_factory=dict)
    lets: dict[str, LetInfo] = field(default_factory=dict)
    blocks: list[BlockInfo] = field(default_factory=list)
    otherwise: RuleInfo | None = None
    header_span: Span = NO_SPAN
    groups: list[GroupInfo] = field(default_factory=list)
    """The declared groups, in declaration order (the first whose pattern matches wins)."""
    state_fields: dict[str, FieldInfo] = field(default_factory=dict)
    """`agent.group`, `agent.cumulative_risk`, `agent.blocked_attempts`: the agent's own state,
    which conditions may read (never input)."""


_DURATION = re.compile(r"([0-9]+)(\.[0-9]+)?([A-Za-z_][A-Za-z0-9_]*)?")
_UNIT_WORDS = {"sec": "s", "secs": "s", "second": "s", "seconds": "s", "min": "m", "mins": "m",
               "minute": "m", "minutes": "m", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
               "day": "d", "days": "d"}
"""Words people write for a unit, and the unit they mean (for "did you mean")."""
MAX_DURATION = 36_500 * 86_400
MAX_LIMIT = 10_000
"""The largest N of a `limit N per DURATION` (a store keeps up to N times per agent)."""
"""The longest duration a policy may give: 36500 days (about a century)."""


def duration_seconds(text: str) -> int:
    """The seconds of a valid duration (:func:`duration_problem` is ``None``)."""
    sizes = dict(DURATION_UNITS)
    return int(text[:-1]) * sizes[text[-1]]


def _shown(text: str) -> str:
    """A duration as a message quotes it: cut when it is very long."""
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


def duration_problem(text: str) -> tuple[str | None, str | None]:
    """What is wrong with a duration as written, and a hint; ``(None, None)`` when it is one
    (`30m`, `1h`, `7d`: a whole number and a unit)."""
    if text.startswith("-"):
        return f"duration `{text}` is negative", "a duration is at least `1s`"
    match = _DURATION.fullmatch(text)
    if match is None:   # a word (`hour`)
        unit = _UNIT_WORDS.get(text.lower()) or (text if text in dict(DURATION_UNITS) else None)
        return (f"`{text}` is not a duration",
                f"did you mean `1{unit}`?" if unit else None)
    whole, fraction, unit = match.groups()
    if len(whole.lstrip("0")) > len(str(MAX_DURATION)):   # before any conversion of its digits
        return f"duration `{_shown(text)}` is too long", "a duration is at most `36500d`"
    if unit is None:
        return f"duration `{text}` has no unit", f"did you mean `{text}s`?"
    sizes = dict(DURATION_UNITS)
    if unit not in sizes:
        meant = _UNIT_WORDS.get(unit.lower()) or (unit.lower() if unit.lower() in sizes else None)
        return (f"unknown duration unit `{unit}` in `{text}`",
                f"did you mean `{whole}{fraction or ''}{meant}`?" if meant else None)
    if fraction is not None:
        seconds = float(whole + fraction) * sizes[unit]
        exact = seconds == int(seconds) and seconds >= 1
        return (f"duration `{text}` is not a whole number of `{unit}`",
                f"write it in a smaller unit: `{duration_text(int(seconds))}`" if exact else None)
    seconds = int(whole) * sizes[unit]
    if seconds < 1:
        return f"duration `{text}` is zero", "a duration is at least `1s`"
    if seconds > MAX_DURATION:
        return f"duration `{text}` is too long", "a duration is at most `36500d`"
    return None, None


def _covering_pattern(text: str, earlier: Mapping[str, str]) -> str | None:
    """An earlier pattern that holds every agent id `text` holds (`None`: there is none): the
    same exact id, or a prefix of what `text` matches (looked up by each prefix of it, so a
    policy of many patterns is checked in linear time)."""
    core = text[:-1] if text.endswith("*") else text
    if not text.endswith("*") and text in earlier:
        return text
    for end in range(len(core) + 1):
        candidate = core[:end] + "*"
        if candidate in earlier:
            return candidate
    return None


def interpolated_fields(reason: str) -> Iterator[tuple[str | None, int, int]]:
    """(field or None for a lone brace, start, end) for every placeholder in a reason."""
    for match in _INTERPOLATION.finditer(reason):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        yield match.group(1), match.start(), match.end()


class Checker:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.model = Model()
        self.diagnostics: list[Diagnostic] = []
        self._group_limits: list[tuple[GroupInfo, tuple[ast.Limit, ...]]] = []
        """Each group's `limit` lines, checked once the actions are known."""
        self._expanded: dict[str, tuple[int, int]] = {}
        """Per named condition: (depth, size) with the named conditions it uses expanded."""

    def report(self, code: str, message: str, span: Span, **kwargs: Any) -> None:
        self.diagnostics.append(diagnostic(code, message, span, **kwargs))

    def run(self) -> Model:
        for check in (self.structure, self.settings, self.groups, self.declarations, self.lets_pass,
                      self.actions, self.usage):
            check()
        return self.model

    # ----------------------------------------------------------------- structure
    def structure(self) -> None:
        main = self.program.main
        if main.module is None:
            return
        headers = main.module.of_type(ast.PolicyDecl)
        self.model.is_policy = bool(headers)
        for extra in headers[1:]:
            self.report("SL051", "a file holds one policy", extra.span,
                        related=[Related(headers[0].span, "first policy header")])
        if not headers:
            for item in main.module.items:
                if isinstance(item, (ast.ActionBlock, ast.Otherwise)):
                    head = item.span.source.line(item.span.line).strip()
                    self.report("SL050", "action rules need a `policy` header", first_line(item.span),
                                help=f"start the file with `policy NAME version \"1\" {{ }}` ({head})")
                    break
        otherwise = main.module.of_type(ast.Otherwise)
        for extra in otherwise[1:]:
            self.report("SL052", "a policy has at most one `otherwise`", extra.span,
                        related=[Related(otherwise[0].span, "first `otherwise`")])

    # ------------------------------------------------------------------ settings
    def settings(self) -> None:
        module = self.program.main.module
        headers = module.of_type(ast.PolicyDecl) if module else []
        if not headers:
            return
        header = headers[0]
        model = self.model
        model.name = header.name.value
        model.version = header.version.value if header.version else ""
        model.header_span = first_line(header.span)
        seen: dict[str, ast.Setting] = {}
        for setting in header.settings:
            name = setting.name.value
            if name in seen:
                self.report("SL115", f"setting `{name}` is given twice", setting.span)
                continue
            seen[name] = setting
            if name not in SETTINGS:
                self.report("SL110", f"unknown setting `{name}`", setting.name.span,
                            help=did_you_mean(name, SETTINGS) or "settings: " + ", ".join(SETTINGS))
                continue
            self._setting(name, setting.value)

    def _setting(self, name: str, value: ast.SettingValue,
                 target: Model | GroupInfo | None = None) -> None:
        """Check one setting and keep its value in ``target`` (the model, or a group)."""
        model = self.model
        kept: Model | GroupInfo = model if target is None else target
        if name == "undeclared_fields":
            self._undeclared_fields(value)
        elif name == "risk_decay":
            self._risk_decay(value, kept)
        elif name == "review_timeout":
            self._review_timeout(value)
        elif name == "action_type":
            if not isinstance(value, ast.Normalize):
                self.report("SL210", "`action_type` takes `normalize ...`", value.span,
                            help="for example `action_type normalize trim, upper`")
                return
            model.action_normalize = self._normalize_steps(value)
        elif name == "description":
            if isinstance(value, ast.Str):
                model.description = value.value
            else:
                self.report("SL210", "`description` takes a string", value.span)
        else:
            lowest = 1
            if not isinstance(value, ast.Num) or isinstance(value.value, float) or value.value < lowest:
                what = "a positive integer" if name == "risk_threshold" else "an integer of at least 1"
                self.report("SL210", f"`{name}` must be {what}", value.span)
                return
            setattr(kept, name, value.value)

    def _undeclared_fields(self, value: ast.SettingValue) -> None:
        word = value.value if isinstance(value, (ast.Name, ast.Str)) else None
        if word in UNDECLARED_FIELDS and isinstance(value, ast.Name):
            self.model.undeclared_fields = word
            self.model.undeclared_span = value.span
            if word == "ignore":
                self.report("SL305", "undeclared fields are ignored: a misspelt field name "
                            "leaves the real field at its default", value.span,
                            help="`undeclared_fields refuse` (the default) blocks input with a "
                                 "field the policy does not declare")
            return
        hint = did_you_mean(word, UNDECLARED_FIELDS) if isinstance(word, str) else None
        self.report("SL210", "`undeclared_fields` is `refuse` or `ignore`", value.span,
                    help=hint or "`refuse` blocks input with a field the policy does not "
                                 "declare; `ignore` reads past it")

    def _review_timeout(self, value: ast.SettingValue) -> None:
        """`review_timeout DURATION`: SL210 for a value that is no duration, SL224 for a bad
        one."""
        if isinstance(value, ast.Name):   # `review_timeout hour`: a word for a duration
            value = ast.Duration(value.value, span=value.span)
        if not isinstance(value, ast.Duration):
            hint = (f"did you mean `{value.value}s`?" if isinstance(value, ast.Num)
                    and not isinstance(value.value, float) else None)
            self.report("SL210", "`review_timeout` takes a duration", value.span,
                        help=hint or "for example `review_timeout 1h`: a `review` ticket "
                                     "expires after an hour without an operator's verdict")
            return
        self.model.review_timeout = self.duration(value)

    def _risk_decay(self, value: ast.SettingValue, target: Model | GroupInfo) -> None:
        if not isinstance(value, ast.Rate):
            self.report("SL210", "`risk_decay` takes `AMOUNT per DURATION`", value.span,
                        help="for example `risk_decay 10 per 1h`: cumulative risk goes down by "
                             "10 for every hour")
            return
        amount = value.amount.value
        if isinstance(amount, float) or amount < 1:
            self.report("SL210", "the amount of `risk_decay` must be a positive integer",
                        value.amount.span, help="for example `risk_decay 10 per 1h`")
            return
        seconds = self.duration(value.period)
        if seconds is not None:
            target.risk_decay = (amount, seconds)

    # -------------------------------------------------------------------- groups
    def groups(self) -> None:
        """Each `group`: a unique name, its patterns (SL131, SL132) and the settings a group
        may give (SL110 for any other)."""
        seen: dict[str, GroupInfo] = {}
        earlier: dict[str, str] = {}
        """Pattern to the group that gave it first (earlier patterns, this group's included)."""
        for _loaded, decl in self._items(ast.GroupDecl):
            name = decl.name.value
            info = GroupInfo(name, decl.name.span)
            if name in seen:
                self.report("SL130", f"group `{name}` is declared twice", decl.name.span,
                            related=[Related(seen[name].span, "first declaration")],
                            help="give each group one `group` block")
                continue
            seen[name] = info
            for pattern in decl.patterns:
                self._group_pattern(pattern, name, earlier, info)
            given: set[str] = set()
            for setting in decl.settings:
                key = setting.name.value
                if key in given:
                    self.report("SL115", f"setting `{key}` is given twice", setting.span)
                    continue
                given.add(key)
                if key not in GROUP_SETTINGS:
                    self.report("SL110", f"`{key}` is not a group setting", setting.name.span,
                                help=did_you_mean(key, GROUP_SETTINGS)
                                or "a group may give " + ", ".join(GROUP_SETTINGS))
                    continue
                self._setting(key, setting.value, info)
            self.model.groups.append(info)
            self._group_limits.append((info, decl.limits))
        self._state_fields()

    def _state_fields(self) -> None:
        """The agent's state as conditions read it: `agent.group` is one of the declared
        group names or `""` (no group); the two counts are ints."""
        names = [group.name for group in self.model.groups] + [""]
        for name, type_name, values in (("agent.group", "enum", names),
                                        ("agent.cumulative_risk", "int", None),
                                        ("agent.blocked_attempts", "int", None)):
            decl = ast.FieldDecl(ast.Path(tuple(name.split("."))),
                                 ast.TypeRef("simple", ast.Name(type_name)))
            self.model.state_fields[name] = FieldInfo(name, type_name, False, None, False, [],
                                                      values, decl, False)

    def _group_pattern(self, pattern: ast.Str, group: str, earlier: dict[str, str],
                       info: GroupInfo) -> None:
        text = pattern.value
        star = text.find("*")
        if not text or (star >= 0 and star != len(text) - 1):
            self.report("SL131", f"`{text}` is not an agent pattern", pattern.span,
                        help="an agent id (`\"ops-7\"`), or a prefix ending in `*` "
                             "(`\"senior-*\"`); `*` only at the end")
            return
        before = _covering_pattern(text, earlier)
        if before is not None:
            owner = earlier[before]
            where = "an earlier pattern" if owner == group else f"group `{owner}`"
            self.report("SL132", f"agent pattern `{text}` of group `{group}` never "
                        f"decides: {where} takes its agents first (`{before}`)",
                        pattern.span,
                        help="the first group, in declaration order, whose pattern matches "
                             "an agent's id holds it; move this group up or narrow the "
                             "earlier pattern")
        earlier.setdefault(text, group)
        info.patterns.append(text)

    def duration(self, duration: ast.Duration) -> int | None:
        """A duration's whole seconds; SL224 (with a did-you-mean) when it is not one."""
        problem, hint = duration_problem(duration.text)
        if problem is None:
            return duration_seconds(duration.text)
        self.report("SL224", problem, duration.span,
                    help=hint or "a duration is a whole number and a unit: `s`, `m`, `h` or "
                                 "`d` (`30m`, `1h`, `7d`)")
        return None

    def _normalize_steps(self, normalize: ast.Normalize) -> list[str]:
        steps = []
        for step in normalize.steps:
            if step.value in NORMALIZATIONS:
                steps.append(step.value)
            else:
                self.report("SL114", f"unknown normalisation `{step.value}`", step.span,
                            help=did_you_mean(step.value, NORMALIZATIONS)
                            or "normalisations: lower, upper, trim")
        return steps

    # -------------------------------------------------------------- declarations
    def _items(self, kind: type) -> Iterator[tuple[LoadedFile, Any]]:
        for loaded, module in self.program.modules():
            for item in module.of_type(kind):
                yield loaded, item

    def declarations(self) -> None:
        for loaded, block in self._items(ast.InputBlock):
            for decl in block.fields:
                self._declare_field(decl, loaded is self.program.main)

    def _nesting(self, decl: ast.FieldDecl) -> None:
        """SL117 when the field is inside a declared field (`a.b` after `a`) or holds one (`a`
        after `a.b`): input gives `a` as a value or as the object holding `b`, never both (a
        table with both does not load)."""
        name = decl.path.dotted
        parts = decl.path.parts
        outer = next((".".join(parts[:depth]) for depth in range(1, len(parts))
                      if ".".join(parts[:depth]) in self.model.fields), None)
        inner = next((other for other in self.model.fields if other.startswith(name + ".")),
                     None)
        if outer is not None:
            other, parent, message = outer, outer, f"is inside the declared field `{outer}`"
        elif inner is not None:
            other, parent, message = inner, name, f"holds the declared field `{inner}`"
        else:
            return
        self.report("SL117", f"field `{name}` {message}", decl.path.span,
                    related=[Related(self.model.fields[other].decl.span, "declared here")],
                    help=f"input gives `{parent}` as a value or as an object, not both: remove "
                         "one, or rename it")

    def _declare_field(self, decl: ast.FieldDecl, main: bool) -> None:
        name = decl.path.dotted
        if name in self.model.fields:
            self.report("SL103", f"field `{name}` is declared twice", decl.span,
                        related=[Related(self.model.fields[name].decl.span, "first declaration")])
            return
        self._nesting(decl)
        if decl.path.parts[0] == STATE_PREFIX:
            self.report("SL222", f"a field may not be named `{name}`", decl.path.span,
                        help="`agent` is the agent's own state (`agent.group`, "
                             "`agent.cumulative_risk`, `agent.blocked_attempts`), which the "
                             "runtime gives and an agent never does; name the field otherwise "
                             f"(`context.{name}`)")
        if name in BUILT_IN_PLACEHOLDERS:
            self.report("SL222", f"a field may not be named `{name}`", decl.path.span,
                        help=f"a reason's `{{{name}}}` is the "
                             + ("action type" if name == "action" else "agent's id")
                             + f"; name the field otherwise, or put it under a prefix "
                               f"(`context.{name}`)")
        type_name = self._type(decl.type)
        steps = self._normalize_steps(decl.normalize) if decl.normalize else []
        if decl.normalize and type_name not in ("string", "enum", "set", "?"):
            self.report("SL211", f"`{type_name}` field `{name}` cannot be normalised",
                        decl.normalize.span)
        values = [v.value for v in decl.type.values] if type_name == "enum" else None
        info = FieldInfo(name, type_name, decl.optional, None, decl.default is not None, steps,
                         values, decl, main)
        if decl.default is not None:
            info.default = self._default(info, decl.default)
        self.model.fields[name] = info

    def _type(self, type_ref: ast.TypeRef) -> str:
        if type_ref.kind == "enum":
            return "enum"
        name = type_ref.name.value
        if type_ref.kind == "set":
            if name != "string":
                self.report("SL113", f"unknown set element type `{name}`", type_ref.name.span,
                            help="sets hold strings: `set<string>`")
            return "set"
        if name not in SIMPLE_TYPES:
            self.report("SL113", f"unknown type `{name}`", type_ref.name.span,
                        help=did_you_mean(name, SIMPLE_TYPES + ("enum", "set"))
                        or "types: bool, int, number, string, enum {...}, set<string>")
            return "?"
        return name

    def _default(self, info: FieldInfo, default: ast.Str | ast.Num | ast.Bool | ast.SetLit) -> Any:
        fits = {
            "bool": isinstance(default, ast.Bool),
            "int": isinstance(default, ast.Num) and isinstance(default.value, int),
            "number": isinstance(default, ast.Num),
            "string": isinstance(default, ast.Str),
            "enum": isinstance(default, ast.Str) and default.value in (info.values or []),
            "set": isinstance(default, ast.SetLit),
            "?": True,
        }[info.type]
        if not fits:
            self.report("SL206", f"default does not fit `{info.type}` field `{info.name}`",
                        default.span)
            return None
        if isinstance(default, ast.SetLit):
            return sorted({normalize(s.value, info.normalize) for s in default.items})
        if isinstance(default, ast.Str):
            return normalize(default.value, info.normalize)
        return default.value

    # ---------------------------------------------------------------------- lets
    def lets_pass(self) -> None:
        for loaded, let in self._items(ast.Let):
            name = let.name.value
            if name in self.model.lets:
                self.report("SL104", f"`{name}` is defined twice", let.span,
                            related=[Related(self.model.lets[name].decl.span, "first definition")])
                continue
            if name in self.model.fields:
                self.report("SL116", f"`{name}` is both a field and a `let`", let.span)
                continue
            self.model.lets[name] = LetInfo(name, let.value, let, loaded is self.program.main)
        for info in self.model.lets.values():
            if not info.is_set:
                self.condition(info.value)  # type: ignore[arg-type]
        self._expand_lets()

    def _expand_lets(self) -> None:
        """SL213 for named conditions in a cycle; the expanded depth and size of the others,
        SL013 / SL304 past the limits. Iterative and memoised: a chain of any length or a
        diamond of `let`s costs linear time, and no later stage expands what is too big."""
        conditions = {n: i for n, i in self.model.lets.items() if not i.is_set}
        shapes = {name: self._shape(info.value) for name, info in conditions.items()}  # type: ignore[arg-type]
        state: dict[str, str] = {}
        for root in conditions:
            if root in state:
                continue
            path: list[tuple[str, Span]] = []
            stack: list[tuple[str, int]] = [(root, 0)]
            state[root] = "open"
            while stack:
                name, index = stack.pop()
                refs = shapes[name][2]
                if index == len(refs):
                    state[name] = "done"
                    self._expanded[name] = self._measure(shapes[name])
                    if path:
                        path.pop()
                    continue
                stack.append((name, index + 1))
                target, span, _level = refs[index]
                if state.get(target) == "open":
                    self._report_cycle(path + [(name, span)], target)
                elif target not in state:
                    state[target] = "open"
                    path.append((name, span))
                    stack.append((target, 0))
        for name in conditions:
            self._check_expansion(shapes[name], conditions[name].decl.name.span,
                                  f"named condition `{name}`")

    def _report_cycle(self, path: list[tuple[str, Span]], target: str) -> None:
        start = next(i for i, (name, _) in enumerate(path) if name == target)
        cycle = [name for name, _ in path[start:]] + [target]
        self.report("SL213", f"named condition `{target}` refers to itself: "
                    + " -> ".join(cycle), path[start][1])

    def _shape(self, cond: ast.Condition) -> tuple[int, int, list[tuple[str, Span, int]]]:
        """(nesting depth, node count, references to named conditions with their depth)."""
        depth = size = 0
        refs: list[tuple[str, Span, int]] = []
        stack: list[tuple[ast.Condition, int]] = [(cond, 0)]
        while stack:
            node, level = stack.pop()
            size += 1
            if isinstance(node, (ast.And, ast.Or)):
                depth = max(depth, level + 1)
                stack.extend((operand, level + 1) for operand in reversed(node.operands))
            elif isinstance(node, ast.Not):
                depth = max(depth, level + 1)
                stack.append((node.operand, level + 1))
            elif isinstance(node, ast.Ref):
                let = self.model.lets.get(node.path.dotted)
                if let is not None and not let.is_set:
                    refs.append((let.name, node.span, level))
        return depth, size, refs

    def _measure(self, shape: tuple[int, int, list[tuple[str, Span, int]]]) -> tuple[int, int]:
        """Depth and size of a condition with its (already measured) named conditions in; going
        through a name is a level, as it is a step for every stage that expands it."""
        depth, size, refs = shape
        for name, _span, level in refs:
            inner_depth, inner_size = self._expanded.get(name, (0, 1))
            depth = max(depth, level + 1 + inner_depth)
            size += inner_size - 1
        return depth, size

    def _too_big(self, name: str) -> bool:
        depth, size = self._expanded.get(name, (0, 1))
        return depth > MAX_NESTING or size > MAX_EXPANDED_TESTS

    def _check_expansion(self, shape: tuple[int, int, list[tuple[str, Span, int]]], span: Span,
                         what: str) -> None:
        """SL013 / SL304 for a condition past the limits once expanded, unless a named
        condition it uses is past them already (that one is reported, once)."""
        if any(self._too_big(name) for name, _span, _level in shape[2]):
            return
        depth, size = self._measure(shape)
        if depth > MAX_NESTING:
            self.report("SL013", f"{what} nests more than {MAX_NESTING} levels deep with the "
                        "named conditions it uses expanded", span,
                        help="flatten the chain of `let`s it goes through")
        elif size > MAX_EXPANDED_TESTS:
            self.report("SL304", f"{what} expands to more than {MAX_EXPANDED_TESTS} tests with "
                        "the named conditions it uses expanded", span,
                        help="a `let` used twice is expanded twice: simplify the conditions")

    # ------------------------------------------------------------------- actions
    def actions(self) -> None:
        seen_names: dict[str, ast.ActionName] = {}
        rule_ids: dict[str, Span] = {}
        for loaded, block in self._items(ast.ActionBlock):
            names = []
            for action in block.names:
                normalized = normalize(action.value, self.model.action_normalize)
                if normalized in seen_names:
                    self.report("SL106", f"action `{normalized}` is named by an earlier block",
                                action.span,
                                related=[Related(seen_names[normalized].span, "first named here")])
                    continue
                seen_names[normalized] = action
                names.append(normalized)
            label = names[0] if names else "ACTION"
            rules = [self._rule(rule.outcome, rule.when, rule.span, loaded,
                                f"{_id_part(label)}_RULE_{index}", rule_ids)
                     for index, rule in enumerate(block.rules, start=1)]
            limits = self._limits(block.limits, "block")
            self.model.blocks.append(BlockInfo(names, rules, first_line(block.span),
                                               [(n, d) for _a, n, d in limits]))
        for loaded, otherwise in self._items(ast.Otherwise):
            if self.model.otherwise is None:
                self.model.otherwise = self._rule(otherwise.outcome, None, otherwise.span, loaded,
                                                  "OTHERWISE", rule_ids)
        for info, declared in self._group_limits:
            info.limits = self._limits(declared, f"group `{info.name}`", seen_names)
        if self.model.is_policy and self.model.otherwise is None:
            self.report("SL301", "no `otherwise`: action types that no block names are blocked",
                        self.model.header_span,
                        help="add `otherwise block as UNKNOWN_ACTION \"...\"` to say so explicitly")

    def _rule(self, outcome: ast.Outcome, when: ast.Condition | None, span: Span,
              loaded: LoadedFile, generated: str, rule_ids: dict[str, Span]) -> RuleInfo:
        clauses: dict[str, ast.Clause] = {}
        for clause in outcome.clauses:
            if clause.kind in clauses:
                self.report("SL115", f"`{clause.kind}` is given twice", clause.span)
            else:
                clauses[clause.kind] = clause
        id_clause = clauses.get("id")
        if id_clause is None:
            rule_id = generated
            self.report("SL109", f"rule has no id; it is called `{generated}`", outcome.span,
                        help=f"add `as {generated}` or a better name")
        else:
            rule_id = id_clause.value.value  # type: ignore[assignment,union-attr]
            if rule_id in rule_ids:
                self.report("SL105", f"rule id `{rule_id}` is used twice", id_clause.value.span,
                            related=[Related(rule_ids[rule_id], "first used here")])
        rule_ids.setdefault(rule_id, (id_clause.value.span if id_clause else outcome.span))
        risk = self._risk(outcome, clauses.get("risk"))
        if when is not None:
            self.condition(when)
            self._check_expansion(self._shape(when), when.span, "condition")
        reason = self._text(clauses.get("reason"))
        self._check_interpolation(clauses.get("reason"))
        return RuleInfo(
            id=rule_id, generated_id=id_clause is None, outcome=outcome.kind, risk=risk,
            threat=self._text(clauses.get("threat")) or None, reason=reason,
            description=self._text(clauses.get("description")) or None, when=when,
            span=span, file=loaded, limit=self._rule_limit(outcome, clauses.get("limit")),
            expires=self._expires(outcome, clauses.get("expires")),
        )

    def _rule_limit(self, outcome: ast.Outcome, clause: ast.Clause | None) -> tuple[int, int] | None:
        """A rule's `limit` clause: only an `allow` rule has one (limits count allows)."""
        if clause is None:
            return None
        assert isinstance(clause.value, ast.Rate)
        if outcome.kind != "allow":
            self.report("SL225", f"a `{outcome.kind}` rule is never limited", clause.span,
                        help="a limit counts the decisions a rule allows: put it on an "
                             "`allow` rule, or before the rules of the action block to limit "
                             "the block's actions")
            return None
        return self._rate_limit(clause.value)

    def _rate_limit(self, rate: ast.Rate) -> tuple[int, int] | None:
        """`N per DURATION` of a limit: N a whole number from 1 to `MAX_LIMIT` (SL225), the
        duration a duration (SL224)."""
        count = rate.amount.value
        valid = not isinstance(count, float) and 1 <= count <= MAX_LIMIT
        if not valid:
            self.report("SL225", f"a limit allows from 1 to {MAX_LIMIT} decisions, not "
                                 f"`{rate.amount.span.text}`", rate.amount.span,
                        help="for example `limit 5 per 1h`: at most 5 allowed decisions in any "
                             "hour")
        seconds = self.duration(rate.period)
        return (int(count), seconds) if valid and seconds is not None else None

    def _limits(self, limits: tuple[ast.Limit, ...], where: str,
                actions: Mapping[str, ast.ActionName] | None = None
                ) -> list[tuple[str | None, int, int]]:
        """The `limit` lines of a block or a group (``actions``: the actions the blocks name,
        for a group's `limit ACTION N per D`). Two limits over the same actions and the same
        period are SL225."""
        kept: list[tuple[str | None, int, int]] = []
        seen: dict[tuple[str | None, int], ast.Limit] = {}
        for limit in limits:
            action = None
            if limit.action is not None and actions is not None:
                action = normalize(limit.action.value, self.model.action_normalize)
                if action not in actions:
                    self.report("SL134", f"no block names action `{action}`", limit.action.span,
                                help=did_you_mean(action, actions)
                                or "a group's `limit ACTION N per D` limits an action an "
                                   "`action` block names; `limit N per D` limits every action")
                    continue
            rate = self._rate_limit(limit.rate)
            if rate is None:
                continue
            key = (action, rate[1])
            if key in seen:
                self.report("SL225", f"{where} has two limits per `{limit.rate.period.text}`"
                            + ("" if action is None else f" for `{action}`"), limit.span,
                            related=[Related(seen[key].span, "first limit")],
                            help="keep the one you mean: the lower count decides anyway")
                continue
            seen[key] = limit
            kept.append((action, *rate))
        return kept

    def _expires(self, outcome: ast.Outcome, clause: ast.Clause | None) -> int | None:
        """A `review` rule's `expires DURATION` in seconds; SL310 on any other rule."""
        if clause is None:
            return None
        if outcome.kind != "review":
            self.report("SL310", f"a `{outcome.kind}` rule has no expiry", clause.span,
                        help="`expires` is how long a `review` waits for an operator: make the "
                             f"rule `review`, or remove `{' '.join(clause.span.text.split())}`")
            return None
        value = clause.value
        assert isinstance(value, ast.Duration)
        return self.duration(value)

    @staticmethod
    def _text(clause: ast.Clause | None) -> str:
        return clause.value.value if clause is not None else ""  # type: ignore[union-attr,return-value]

    def _risk(self, outcome: ast.Outcome, clause: ast.Clause | None) -> int:
        if clause is None:
            return 0
        value = clause.value
        assert isinstance(value, ast.Num)
        threshold = self.model.risk_threshold
        if isinstance(value.value, float) or not 0 <= value.value <= threshold:
            self.report("SL302", f"risk must be an integer from 0 to {threshold}", value.span)
            return 0
        if outcome.kind == "shutdown":
            self.report("SL303", "a `shutdown` rule's risk is never applied", value.span)
        return value.value

    def _check_interpolation(self, clause: ast.Clause | None) -> None:
        if clause is None:
            return
        string = clause.value
        assert isinstance(string, ast.Str)
        for name, _start, _end in interpolated_fields(string.value):
            if name is None:
                self.report("SL009", "a lone brace in a reason", string.span,
                            help="interpolate a field as `{field}`; write `{{` or `}}` for a brace")
                continue
            span = _sub_span(string.span, "{" + name + "}")
            if name in BUILT_IN_PLACEHOLDERS:
                continue
            if name in self.model.fields:
                self.model.fields[name].used = True
            else:
                self.report("SL101", f"undeclared field `{name}` in reason", span,
                            help=did_you_mean(name, [*self.model.fields, *BUILT_IN_PLACEHOLDERS])
                            or "declare it in `input`")

    # ---------------------------------------------------------------- conditions
    def condition(self, cond: ast.Condition) -> None:
        if isinstance(cond, (ast.And, ast.Or)):
            for operand in cond.operands:
                self.condition(operand)
        elif isinstance(cond, ast.Not):
            self.condition(cond.operand)
        elif isinstance(cond, ast.Ref):
            self._ref(cond)
        elif isinstance(cond, ast.Exists):
            info = self.field(cond.path)
            if info is not None and info.always_present:
                why = "has a default" if info.has_default else "is required"
                self.report("SL208", f"`{info.name}` {why}, so `exists` is always true", cond.span)
        elif isinstance(cond, ast.Compare):
            self._compare(cond)
        elif isinstance(cond, ast.ArithCompare):
            self._arith_compare(cond)
        elif isinstance(cond, ast.Membership):
            self._membership(cond)
        elif isinstance(cond, ast.StringTest):
            self._string_test(cond)

    def field(self, path: ast.Path) -> FieldInfo | None:
        if path.parts[0] == STATE_PREFIX:
            return self._state_field(path)
        info = self.model.fields.get(path.dotted)
        if info is None:
            self.report("SL101", f"undeclared field `{path.dotted}`", path.span,
                        help=did_you_mean(path.dotted, self.model.fields)
                        or "declare it in an `input` block")
            return None
        info.used = True
        return info if info.type != "?" else None

    def _state_field(self, path: ast.Path) -> FieldInfo | None:
        state = self.model.state_fields.get(path.dotted)
        if state is None:
            self.report("SL101", f"the agent's state has no `{path.dotted}`", path.span,
                        help=did_you_mean(path.dotted, self.model.state_fields)
                        or "conditions may read " + ", ".join(
                            f"`{name}`" for name in self.model.state_fields))
        return state

    def _ref(self, ref: ast.Ref) -> None:
        name = ref.path.dotted
        let = self.model.lets.get(name)
        if let is not None:
            let.used = True
            if let.is_set:
                self.report("SL212", f"`{name}` is a set, not a condition", ref.span,
                            help=f"test membership: `field in {name}`")
            return
        if name not in self.model.fields and ref.path.parts[0] != STATE_PREFIX:
            conditions = [n for n, let in self.model.lets.items() if not let.is_set]
            bools = [n for n, f in self.model.fields.items() if f.type == "bool"]
            code = "SL101" if "." in name or not name.isupper() else "SL102"
            what = "undeclared field" if code == "SL101" else "unknown name"
            self.report(code, f"{what} `{name}`", ref.span,
                        help=did_you_mean(name, conditions + bools) or "declare it in `input` or with `let`")
            return
        info = self.field(ref.path)
        if info is not None and info.type != "bool":
            self.report("SL204", f"`{name}` is a `{info.type}` field, not a condition", ref.span,
                        help="compare it, for example `" + name + " == ...`")

    def _compare(self, cmp: ast.Compare) -> None:
        left = self.field(cmp.left)
        right_field = self.field(cmp.right) if isinstance(cmp.right, ast.Path) else None
        if left is None or (isinstance(cmp.right, ast.Path) and right_field is None):
            return
        if cmp.op in ("<", "<=", ">", ">="):
            right_type = right_field.type if right_field else _literal_type(cmp.right)
            if left.type not in NUMERIC or right_type not in NUMERIC:
                self.report("SL203", f"`{cmp.op}` compares numbers, not `{left.type}` and `{right_type}`",
                            cmp.span)
            return
        if right_field is not None:
            if _family(left.type) != _family(right_field.type) or left.type == "set":
                self.report("SL201", f"cannot compare `{left.type}` with `{right_field.type}`", cmp.span)
            return
        literal = cmp.right
        assert not isinstance(literal, ast.Path)
        if left.type == "set" or _family(left.type) != _family(_literal_type(literal)):
            self.report("SL201", f"cannot compare `{left.type}` field `{left.name}` with "
                        f"{_literal_type(literal)} {_show(literal)}", cmp.span)
            return
        if isinstance(literal, ast.Str):
            self._string_value(left, literal)

    def _arith_compare(self, cmp: ast.ArithCompare) -> None:
        """Both sides are numbers (SL220, SL201), read a field (SL223) and compute (SL221)."""
        left = self._number(cmp.left)
        if isinstance(cmp.right, (ast.Str, ast.Bool)):
            if left is not None:
                self.report("SL201", f"cannot compare the {left} `{_text(cmp.left)}` with "
                            f"{_literal_type(cmp.right)} {_show(cmp.right)}", cmp.span)
            return
        right = self._number(cmp.right)
        if left is None or right is None:
            return
        sides = (from_ast(cmp.left), from_ast(cmp.right))
        for side, expr in zip((cmp.left, cmp.right), sides):
            try:
                fold(expr)
            except arith.ArithmeticFailure as failure:
                self.report("SL221", str(failure), side.span,
                            help="a constant computation must give a finite number")
                return
        if not any(next(arith.fields(expr), None) for expr in sides):
            self.report("SL223", f"`{_text(cmp.left)} {cmp.op} {_text(cmp.right)}` compares "
                        "constants, so it is always true or always false", cmp.span,
                        help="compare a field")

    def _number(self, expr: ast.Expr) -> str | None:
        """`int` or `number`, what `expr` computes; None after reporting a field that is
        undeclared or not a number."""
        ok = True
        types: dict[str, str] = {}
        for path in expression_paths(expr):
            info = self.field(path)
            if info is None:
                ok = False
            elif info.type not in NUMERIC:
                numeric = [n for n, f in self.model.fields.items() if f.type in NUMERIC]
                self.report("SL220", f"`{info.name}` is a `{info.type}` field, not a number",
                            path.span, help=did_you_mean(info.name, numeric)
                            or "arithmetic and `<` `<=` `>` `>=` take `int` and `number` fields")
                ok = False
            else:
                types[info.name] = info.type
        return arith.result_type(from_ast(expr), types) if ok else None

    def _string_value(self, info: FieldInfo, literal: ast.Str) -> None:
        if info.name == "agent.group" and literal.value not in (info.values or []):
            declared = [name for name in info.values or [] if name]
            self.report("SL133", f"unknown group `{literal.value}`", literal.span,
                        help=did_you_mean(literal.value, declared)
                        or ("groups: " + ", ".join(f"`{n}`" for n in declared) + "; `\"\"` is "
                            "no group" if declared else "declare it with `group NAME { ... }`"))
        elif info.type == "enum" and literal.value not in (info.values or []):
            self.report("SL202", f"`{info.name}` can never be {_show(literal)}", literal.span,
                        help=did_you_mean(literal.value, info.values or [])
                        or "values: " + ", ".join(info.values or []))
        elif normalize(literal.value, info.normalize) != literal.value:
            normalized = normalize(literal.value, info.normalize)
            self.report("SL207", f"`{info.name}` is normalised ({', '.join(info.normalize)}), so it "
                        f"is never {_show(literal)}", literal.span,
                        help=f"write \"{normalized}\"")

    def _membership(self, member: ast.Membership) -> None:
        info = self.field(member.path)
        items = self._set_items(member.set)
        if info is None:
            return
        if info.type not in TEXTUAL:
            self.report("SL205", f"`in` needs a string or enum field; `{info.name}` is `{info.type}`",
                        member.span)
            return
        for item in items:
            self._string_value(info, item)

    def _set_items(self, target: ast.Name | ast.SetLit) -> tuple[ast.Str, ...]:
        if isinstance(target, ast.SetLit):
            return target.items
        let = self.model.lets.get(target.value)
        if let is None:
            sets = [n for n, decl in self.model.lets.items() if decl.is_set]
            self.report("SL102", f"unknown set `{target.value}`", target.span,
                        help=did_you_mean(target.value, sets) or "define it with `let NAME = {...}`")
            return ()
        let.used = True
        if not let.is_set:
            self.report("SL212", f"`{target.value}` is a condition, not a set", target.span)
            return ()
        return let.value.items  # type: ignore[union-attr]

    def _string_test(self, test: ast.StringTest) -> None:
        info = self.field(test.path)
        if info is None:
            return
        allowed = TEXTUAL + (("set",) if test.op == "contains" else ())
        if info.type not in allowed:
            self.report("SL209", f"`{test.op}` needs a string field; `{info.name}` is `{info.type}`",
                        test.span)
            return
        if normalize(test.value.value, [s for s in info.normalize if s != "trim"]) != test.value.value:
            self.report("SL207", f"`{info.name}` is normalised ({', '.join(info.normalize)}), so it "
                        f"never {test.op.replace('_', ' ')} {_show(test.value)}", test.value.span)

    # --------------------------------------------------------------------- usage
    def usage(self) -> None:
        if not self.model.is_policy:
            return
        for info in self.model.fields.values():
            if info.main and not info.used:
                self.report("SL107", f"field `{info.name}` is never read", info.decl.path.span,
                            help="remove it, or use it in a rule")
        for let in self.model.lets.values():
            if let.main and not let.used:
                self.report("SL108", f"`{let.name}` is never used", let.decl.name.span)


def expression_paths(expr: ast.Expr) -> Iterator[ast.Path]:
    """The fields a number expression reads, left to right."""
    if isinstance(expr, ast.Path):
        yield expr
    elif isinstance(expr, ast.Neg):
        yield from expression_paths(expr.operand)
    elif isinstance(expr, ast.BinOp):
        yield from expression_paths(expr.left)
        yield from expression_paths(expr.right)


def _text(expr: ast.Expr) -> str:
    return arith.expression_text(from_ast(expr))


def _family(type_name: str) -> str:
    return {"int": "number", "enum": "string"}.get(type_name, type_name)


def _literal_type(literal: ast.Str | ast.Num | ast.Bool | ast.Path) -> str:
    if isinstance(literal, ast.Str):
        return "string"
    if isinstance(literal, ast.Bool):
        return "bool"
    if isinstance(literal, ast.Num):
        return "number"
    return "field"


def _show(literal: ast.Str | ast.Num | ast.Bool) -> str:
    if isinstance(literal, ast.Str):
        return f'`"{literal.value}"`'
    if isinstance(literal, ast.Bool):
        return "`true`" if literal.value else "`false`"
    return f"`{literal.value}`"


def _id_part(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
    return cleaned or "ACTION"


def first_line(span: Span) -> Span:
    """The span cut to its first line, trailing spaces and a trailing `{` removed."""
    line = span.source.line(span.line)
    end_column = len(line) + 1 if span.end_line != span.line else span.end_column
    text = line[span.column - 1 : end_column - 1].rstrip()
    if text.endswith("{") and span.end_line != span.line:
        text = text[:-1].rstrip()
    return Span.of_offsets(span.source, span.start, span.start + len(text))


def _sub_span(span: Span, needle: str) -> Span:
    raw = span.text
    index = raw.find(needle)
    if index < 0:
        return span
    return Span.of_offsets(span.source, span.start + index, span.start + index + len(needle))


def check(program: Program) -> tuple[Model, list[Diagnostic]]:
    checker = Checker(program)
    model = checker.run()
    return model, checker.diagnostics
