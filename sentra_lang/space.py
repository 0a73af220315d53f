"""The input space of one action: finite dimensions, the rows' tests as masks, and witnesses.

The runtime decides on the declared fields after defaults and normalisation. Every field the
rows read becomes one or more *dimensions*, each a finite list of *regions*: inputs that no
test of the rows can tell apart. Together the dimensions are complete: every input the runtime
can receive lies in exactly one combination of regions (a *cell*), and every cell holds an
input, so a first-match evaluation over the cells answers exactly what the runtime does over
all inputs. Each region keeps a representative raw value, so a cell turns into a witness: a
complete input (every required field, values the runtime's normalisation leaves unchanged).

How the regions are built, type by type (docs/diagnostics.md, "What exact means"):

- `bool`: false and true. `enum`: the declared values that normalisation can produce.
- `int` and `number`: every constant the rows compare the field with, and points between and
  beyond them; fields compared with each other share their constants (their defaults among
  them: an absent field is its default) and get enough points in every gap for any order
  among them, integral and fractional where their types differ.
- `string`: a *key* dimension (each constant of an `==`/`in` test, and one *free* region for
  every other string) and, for free strings, one dimension per kind of affix test: the longest
  prefix the rows test that the string starts with, the longest suffix, and for every
  `contains` text whether the string contains it. A free string is built as those pieces
  joined by a separator character no test mentions, which makes every combination real; the
  combinations no string can have (a string starting with `"ab"` always contains `"a"`) are
  excluded by *validity* boxes.
- `set<string>`: a key dimension (present or absent) and one yes/no dimension per member the
  rows test.
- An optional field without a default has an *absent* region too.

Exactness needs each region's representative to be a value the runtime keeps as it is: the
constants and pieces are kept only when normalisation leaves them unchanged (otherwise no
input can ever equal or contain them), and free strings are built from such pieces.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, product
from typing import Any

from sentra_runtime.inputs import MISSING, normalize, normalizer
from sentra_runtime.policy import STATE_NAMES, test_result

from sentra_lang.table import InputField, Test

MAX_REGIONS = 200_000
"""Regions one dimension may have; a larger one is refused before it is built (SL406)."""


class _Mark:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ABSENT: Any = _Mark("absent")
"""A raw value: the input does not give the field."""
INVALID: Any = _Mark("invalid")
"""An effective value: the runtime rejects the input (`INVALID_INPUT`)."""
FREE: Any = _Mark("free string")
"""A raw value standing for every string equal to no constant; its affix dimensions say more."""
PRESENT: Any = _Mark("present set")
"""A raw value standing for every set; its member dimensions say which members it has."""
NA: Any = _Mark("n/a")
"""The value of an affix or member dimension for a raw value of another kind."""
DEFER: Any = _Mark("defer")
OBJECT: Any = _Mark("object")
"""A raw value: an object with no key (`{}`), for a key some version reads as the object of its
declared fields (`a` for `a.b`): what that version takes, and a leaf field `a` refuses."""
STRAY_OBJECT: Any = _Mark("object with an undeclared key")
"""A raw value: an object holding one key no version declares under it (`{"undeclared_key":
true}`), which a version reading it as an object refuses as undeclared (when it refuses)."""
OBJECTS = (OBJECT, STRAY_OBJECT)

SEPARATORS = "~|#^*+=!%&@_-:;,.?/0123456789" + "".join(chr(c) for c in range(0xE000, 0xE100))
PLAIN_FREE = ("other", "OTHER", "Other")

Mask = int
Box = dict[int, Mask]
"""Per dimension index, the regions allowed (bit i = region i); a missing dimension: all."""


class SpaceTooLarge(Exception):
    """A dimension would have more regions than the analysis can cover exactly."""


class NotExact(SpaceTooLarge):
    """A test compares computed values (an arithmetic test `sentra_lang.arithmetic.exact_view`
    could not rewrite): no space covers it exactly, so callers treat it as too large."""


# ----------------------------------------------------------------------------- semantics

def holds(test: Test, value: Any, other: Any = MISSING) -> bool:
    """A test on effective values (MISSING when absent), as the runtime defines it
    (`sentra_runtime.policy.test_result`)."""
    return test_result(test, None if value is MISSING else value,
                       None if other is MISSING else other)


def fixed(text: str, steps: Sequence[str]) -> bool:
    """Normalisation leaves `text` as it is (so some input has exactly this value)."""
    return normalize(text, list(steps)) == text


def _inner(steps: Sequence[str]) -> list[str]:
    return [s for s in steps if s != "trim"]


def piece_fits(text: str, steps: Sequence[str], *, start: bool = False, end: bool = False) -> bool:
    """Some normalised string has `text` inside it (at its start / end when asked)."""
    if not fixed(text, _inner(steps)):
        return False
    if "trim" in steps and text:
        if start and text[0].isspace():
            return False
        if end and text[-1].isspace():
            return False
    return True


# -------------------------------------------------------------------------- declarations

@dataclass(frozen=True)
class View:
    """How one version of the policy reads one field: its declaration, and whether another
    declared field lives under its path (then any value of it makes the input invalid)."""

    spec: InputField
    parent: bool = False

    def effective(self, raw: Any) -> Any:
        spec = self.spec
        if raw is ABSENT:
            if spec.has_default:
                return default_value(spec)
            return MISSING if spec.optional else INVALID
        if self.parent:
            return INVALID
        if raw is FREE:
            return FREE if spec.type == "string" else INVALID
        if raw is PRESENT:
            return PRESENT if spec.type == "set" else INVALID
        return _coerce(spec, raw)


def default_value(spec: InputField) -> Any:
    normalize = normalizer(spec.normalize)
    if spec.type in ("string", "enum"):
        return normalize(str(spec.default))
    if spec.type == "set":
        return frozenset(normalize(item) for item in spec.default or [])  # type: ignore[union-attr]
    return spec.default


def _coerce(spec: InputField, raw: Any) -> Any:
    kind = spec.type
    if kind == "bool":
        return raw if isinstance(raw, bool) else INVALID
    if kind == "int":
        if spec.name in STATE_NAMES and isinstance(raw, int) and raw < 0:
            return INVALID   # the agent's risk and blocked attempts are never negative
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else INVALID
    if kind == "number":
        whole = isinstance(raw, int) and not isinstance(raw, bool)
        return raw if whole or isinstance(raw, float) and math.isfinite(raw) else INVALID
    if kind in ("string", "enum"):
        if not isinstance(raw, str):
            return INVALID
        value = normalize(raw, spec.normalize)
        if kind == "enum" and value not in (spec.values or []):
            return INVALID
        return value
    if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        return frozenset(normalize(item, spec.normalize) for item in raw)
    return INVALID


# ---------------------------------------------------------------------------- dimensions

@dataclass
class Dim:
    """One dimension: `size` regions. `fields` are the fields whose raw values it holds."""

    fields: tuple[str, ...]
    values: list[Any]
    kind: str
    """`value` (a raw tuple per region), `prefix`, `suffix`, `contains`, `member`."""
    pattern: str = ""
    """The `contains` text or set member of a yes/no dimension."""

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def full(self) -> Mask:
        return (1 << self.size) - 1


@dataclass
class _FieldPlan:
    """What the rows do with one field (in every version), before regions are built."""

    name: str
    views: list[View | None]
    objects: list[bool]
    """Per version that does not declare the field: whether the version reads the key as the
    object that holds declared fields (`a` for `a.b`), so that any value the key has in a
    witness (never an object) is refused as `INVALID_INPUT` (`Field `a` must be an object`),
    whatever `undeclared_fields` says."""
    tests: list[tuple[int, Test]] = field(default_factory=list)

    def declared(self) -> list[View]:
        return [v for v in self.views if v is not None]

    def types(self) -> set[str]:
        return {v.spec.type for v in self.declared()}

    def normalizations(self) -> set[tuple[str, ...]]:
        return {tuple(v.spec.normalize) for v in self.declared()}


@dataclass
class Space:
    """The finite input space of one action (for one or several versions of a policy)."""

    dims: list[Dim]
    versions: int
    plans: dict[str, _FieldPlan]
    field_dims: dict[str, list[int]]
    """Per field, the dimensions that hold it (its key or value dimension first)."""
    validity: list[Box]
    """Boxes of cells that stand for no input (combinations no string or set can have)."""
    rejected: list[list[Box]]
    """Per version, boxes of inputs that version rejects (`INVALID_INPUT`)."""
    fillers: dict[str, Any]
    """Raw values for required fields no dimension holds."""
    approximate: list[str] = field(default_factory=list)
    """Fields whose regions are not exhaustive (their normalisation differs between versions)."""
    _masks: dict[tuple[Any, ...], Box] = field(default_factory=dict)
    _indexes: dict[tuple[int, int], _KeyIndex] = field(default_factory=dict)
    _affixes: dict[int, _Sorted] = field(default_factory=dict)
    separators: dict[str, str] = field(default_factory=dict)
    undeclared: list[list[Box]] = field(default_factory=list)
    """Per version, boxes of inputs with a key that version does not declare and refuses
    (`UNDECLARED_FIELD`, which the runtime decides before `INVALID_INPUT`)."""
    agent_ids: dict[str, str] | None = None
    """For a policy that reads the agent's state: an agent id per reachable group; witnesses
    then carry the state as their `agent` part (`sentra_lang.agent_state.fold_witness`)."""

    @property
    def sizes(self) -> list[int]:
        return [d.size for d in self.dims]

    @property
    def cells(self) -> int:
        return math.prod(self.sizes)

    def test_box(self, version: int, test: Test) -> Box:
        """The cells where `test` holds for `version`, as a box (memoised per test)."""
        key = (version, test.field, test.op, repr(test.value), test.other, test.negate)
        box = self._masks.get(key)
        if box is None:
            box = self._masks[key] = self._test_box(version, test)
        return box

    def row_box(self, version: int, tests: Iterable[Test]) -> Box | None:
        """The conjunction of tests as a box; None when it is empty."""
        box: Box = {}
        for test in tests:
            for dim, mask in self.test_box(version, test).items():
                mask &= box.get(dim, mask)
                if not mask:
                    return None
                box[dim] = mask
        return box

    def _test_box(self, version: int, test: Test) -> Box:
        dims = self.field_dims[test.field]
        main = self.dims[dims[0]]
        if test.other is not None or main.kind == "value" and len(main.fields) > 1:
            return {dims[0]: _scan(main, lambda raws: self._group_holds(version, test, main, raws))}
        view = self.plans[test.field].views[version]
        assert view is not None, (test.field, version)
        index = self._indexes.get((dims[0], version))
        if index is None:
            index = self._indexes[(dims[0], version)] = _KeyIndex(main, view)
        sub = self._sub_dim(test)
        key_mask = index.holds(test)
        deferred = False
        for position, raw in index.special:
            result = _raw_holds(view, test, raw, sub is not None)
            if result is DEFER:
                deferred = True
            if result:
                key_mask |= 1 << position
        box = {dims[0]: key_mask}
        if deferred and sub is not None:
            box[sub] = self._affix_mask(sub, test)
        return box

    def _affix_mask(self, sub: int, test: Test) -> Mask:
        """The regions of an affix or member dimension where the test holds (n/a included)."""
        dim = self.dims[sub]
        if dim.kind not in ("prefix", "suffix"):
            return _scan(dim, lambda value: value is NA or _affix_holds(dim, test, value))
        index = self._affixes.get(sub)
        if index is None:
            flip = dim.kind == "suffix"
            index = self._affixes[sub] = _Sorted(sorted(
                (value[::-1] if flip else value, position)
                for position, value in enumerate(dim.values) if value is not NA))
        text = str(test.value)
        positive = index.mask(*index.prefixed(text[::-1] if dim.kind == "suffix" else text))
        # each region's value is the longest tested affix the string has: the test holds when
        # the tested text is a prefix (suffix) of it; regions are sorted, so that is a range
        if test.negate:
            positive = dim.full & ~positive & ~1
        return positive | 1

    def _sub_dim(self, test: Test) -> int | None:
        if test.op not in ("starts_with", "ends_with", "contains"):
            return None
        kind = {"starts_with": "prefix", "ends_with": "suffix", "contains": "contains"}[test.op]
        for index in self.field_dims[test.field][1:]:
            dim = self.dims[index]
            same = dim.kind == kind or (kind == "contains" and dim.kind == "member")
            if same and (dim.kind in ("prefix", "suffix") or dim.pattern == test.value):
                return index
        return None

    def _group_holds(self, version: int, test: Test, dim: Dim, raws: tuple[Any, ...]) -> bool:
        def value(name: str) -> Any:
            view = self.plans[name].views[version]
            if view is None:
                return MISSING
            return view.effective(raws[dim.fields.index(name)])

        left = value(test.field)
        right = value(test.other) if test.other is not None else MISSING
        if left is INVALID or right is INVALID:
            return False
        return holds(test, left, right)

    # ------------------------------------------------------------------------ witnesses

    def point_raws(self, point: Sequence[int]) -> dict[str, Any]:
        """Raw value per field of the dimensions, for one cell (ABSENT kept)."""
        raws: dict[str, Any] = {}
        for name, dims in self.field_dims.items():
            main = self.dims[dims[0]]
            value = main.values[point[dims[0]]]
            if len(main.fields) > 1:
                raws.update(zip(main.fields, value))
                continue
            raw = value[0]
            if raw is FREE:
                raw = self._free_string(name, [(self.dims[d], point[d]) for d in dims[1:]])
            elif raw is PRESENT:
                raw = sorted(self.dims[d].pattern for d in dims[1:]
                             if self.dims[d].values[point[d]] is True)
            raws[name] = raw
        return raws

    def witness(self, point: Sequence[int]) -> dict[str, Any]:
        """The cell as an input the runtime reads as it is: every required field given, and
        no field that every version would fill in with the same value anyway (its default)."""
        raws = self.point_raws(point)
        result = {name: self._object(name, raw) if raw in OBJECTS else _jsonable(raw)
                  for name, raw in sorted(raws.items())
                  if raw is not ABSENT and not self._is_default(name, raw)}
        for name, value in self.fillers.items():
            result.setdefault(name, value)
        if self.agent_ids is not None:
            from sentra_lang.agent_state import fold_witness
            result = fold_witness(result, self.agent_ids)
        return dict(sorted(result.items()))

    def _object(self, name: str, raw: Any) -> dict[str, Any]:
        """The object an `OBJECT` or `STRAY_OBJECT` raw value stands for."""
        if raw is OBJECT:
            return {}
        inner = [other[len(name) + 1:] for other in self.plans if other.startswith(name + ".")]
        return {_stray_key(inner): True}

    def _is_default(self, name: str, raw: Any) -> bool:
        views = self.plans[name].views
        return all(view is not None and view.spec.has_default
                   and view.effective(raw) == view.effective(ABSENT)
                   and _value_key(view.effective(raw)) == _value_key(view.effective(ABSENT))
                   for view in views)

    def _free_string(self, name: str, parts: list[tuple[Dim, int]]) -> str:
        prefix = suffix = ""
        inside: list[str] = []
        for dim, index in parts:
            value = dim.values[index]
            if dim.kind == "prefix":
                prefix = value
            elif dim.kind == "suffix":
                suffix = value
            elif value is True:
                inside.append(dim.pattern)
        pieces = [prefix, suffix] + inside
        inside = [m for m in sorted(set(inside))
                  if not any(m in other for other in pieces if other != m and len(other) > len(m))]
        separator = self.separators[name]
        if not (prefix or suffix or inside) and separator in PLAIN_FREE:
            return separator
        sep = separator[0]
        return prefix + sep + "".join(m + sep for m in inside) + suffix



class _KeyIndex:
    """The regions of a one-field dimension as one version reads them, indexed by value, so
    that the regions where a test holds are found without evaluating it on each region
    (memoised per field and value: the analysis' cost stays near-linear in the tests)."""

    def __init__(self, dim: Dim, view: View) -> None:
        self.special: list[tuple[int, Any]] = []
        """Raw values evaluated one by one: absent, free strings, sets."""
        self.valid = 0
        self.by_value: dict[tuple[str, Any], Mask] = {}
        numbers: list[tuple[Any, int]] = []
        strings: list[tuple[str, int]] = []
        for position, (raw,) in enumerate(dim.values):
            if raw is ABSENT or raw is FREE or raw is PRESENT:
                self.special.append((position, raw))
                continue
            value = view.effective(raw)
            if value is INVALID:
                continue
            bit = 1 << position
            self.valid |= bit
            key = _value_key(value)
            self.by_value[key] = self.by_value.get(key, 0) | bit
            if key[0] == "n":
                numbers.append((value, position))
            elif key[0] == "s":
                strings.append((value, position))
        self.numbers = _Sorted(sorted(numbers))
        self.strings = _Sorted(sorted(strings))
        self.reversed = _Sorted(sorted((text[::-1], position) for text, position in strings))

    def holds(self, test: Test) -> Mask:
        """The valid non-special regions where the test holds (after `negate`)."""
        base = self._base(test)
        return (self.valid & ~base) if test.negate else base

    def _base(self, test: Test) -> Mask:
        op, value = test.op, test.value
        if op == "exists":
            return self.valid
        if op == "==":
            return self.by_value.get(_value_key(value), 0)
        if op == "in":
            mask = 0
            for item in value or []:  # type: ignore[union-attr]
                mask |= self.by_value.get(("s", item), 0)
            return mask
        if op in ("<", "<=", ">", ">="):
            values = self.numbers.keys
            if op == "<":
                return self.numbers.mask(0, bisect_left(values, value))
            if op == "<=":
                return self.numbers.mask(0, bisect_right(values, value))
            if op == ">":
                return self.numbers.mask(bisect_right(values, value), len(values))
            return self.numbers.mask(bisect_left(values, value), len(values))
        text = str(value)
        if op == "starts_with":
            return self.strings.mask(*self.strings.prefixed(text))
        if op == "ends_with":
            return self.reversed.mask(*self.reversed.prefixed(text[::-1]))
        mask = 0
        for item, position in self.strings.entries:
            if text in item:
                mask |= 1 << position
        return mask


class _Sorted:
    """(key, region) pairs sorted by key; a range of keys as a mask of regions."""

    def __init__(self, entries: list[tuple[Any, int]]) -> None:
        self.entries = entries
        self.keys = [key for key, _ in entries]
        positions = [position for _, position in entries]
        self.monotone = all(a < b for a, b in zip(positions, positions[1:]))
        self.members = 0
        for position in positions:
            self.members |= 1 << position

    def mask(self, start: int, stop: int) -> Mask:
        if start >= stop:
            return 0
        if self.monotone:
            low, high = self.entries[start][1], self.entries[stop - 1][1]
            return ((1 << (high + 1)) - (1 << low)) & self.members
        mask = 0
        for _, position in self.entries[start:stop]:
            mask |= 1 << position
        return mask

    def prefixed(self, prefix: str) -> tuple[int, int]:
        """The range of keys that start with `prefix`."""
        start = bisect_left(self.keys, prefix)
        stop = start
        while stop < len(self.keys) and self.keys[stop].startswith(prefix):
            stop += 1
        return start, stop


def _value_key(value: Any) -> tuple[str, Any]:
    """A dictionary key that keeps apart what the runtime's `==` keeps apart (true is not 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return ("o", value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    return value


def _scan(dim: Dim, predicate: Callable[[Any], bool]) -> Mask:
    mask = 0
    for index, value in enumerate(dim.values):
        if predicate(value):
            mask |= 1 << index
    return mask


def _raw_holds(view: View, test: Test, raw: Any, has_sub: bool) -> Any:
    """A test on one raw key value: True, False, or DEFER (decided by an affix dimension)."""
    value = view.effective(raw)
    if value is INVALID:
        return False
    if value is FREE or value is PRESENT:
        if test.op == "exists":
            return not test.negate
        if test.op in ("starts_with", "ends_with", "contains"):
            if has_sub:
                return DEFER
            # no dimension for this text: no free string (or set) has it, unless it is empty
            return (test.value == "" and value is FREE) != test.negate
        return test.negate  # a free string equals no constant
    return holds(test, value)


def _affix_holds(dim: Dim, test: Test, value: Any) -> bool:
    if dim.kind == "prefix":
        result = bool(value.startswith(test.value))
    elif dim.kind == "suffix":
        result = bool(value.endswith(test.value))
    else:
        result = value is True
    return result != test.negate


# -------------------------------------------------------------------------------- build

def build_space(versions: Sequence[Sequence[InputField]], tests: Iterable[tuple[int, Test]], *,
                reject_invalid: bool = False, refuses: Sequence[bool] = ()) -> Space:
    """The space of the given tests (each with the index of the version it belongs to).

    `versions` are the declared inputs of each version (one for `check`, two for `diff`).
    With one version, raw values the version rejects are left out; with several, every value
    at least one version accepts is kept, and `Space.rejected` says where each version rejects.
    `refuses` says which versions refuse undeclared keys (`undeclared_fields refuse`; none by
    default): a field only some versions declare is then present or absent, and
    `Space.undeclared` says where a version refuses it; when the versions differ in this, one
    key that no version declares stands for every such key.
    """
    declared = [{spec.name: spec for spec in specs} for specs in versions]
    refusing = list(refuses) or [False] * len(versions)
    names = sorted({name for specs in declared for name in specs}
                   | _holders(declared, len(set(refusing)) > 1))
    if len(set(refusing)) > 1:
        names.append(_stray_key(names))
    plans = {name: _FieldPlan(name, [_view(specs, name) for specs in declared],
                              [_holder(specs, name) for specs in declared])
             for name in names}
    groups = _Groups()
    for version, test in tests:
        if test.left is not None:
            raise NotExact("a rule compares computed values")
        plans[test.field].tests.append((version, test))
        groups.add(test.field)
        if test.other is not None:
            plans[test.other].tests.append((version, test))
            groups.union(test.field, test.other)
    for name in names:
        views = plans[name].views
        if len({_signature(v) for v in views if v is not None}) > 1 or any(
                view is None and (refuse or holder)
                for view, refuse, holder in zip(views, refusing, plans[name].objects)):
            groups.add(name)  # declarations differ: its validity is part of the diff
    builder = _Builder(plans, len(versions), reject_invalid or len(versions) == 1, refusing)
    for members in groups.sets():
        builder.add(members)
    builder.finish()
    return builder.space


def _stray_key(names: Sequence[str]) -> str:
    """A top-level key no version declares (nor any field under it)."""
    key = "undeclared_key"
    while any(name == key or name.startswith(key + ".") for name in names):
        key += "_"
    return key


def _view(specs: Mapping[str, InputField], name: str) -> View | None:
    spec = specs.get(name)
    if spec is None:
        return None
    parent = any(other.startswith(name + ".") for other in specs)
    return View(spec, parent)


def _holders(declared: Sequence[Mapping[str, InputField]], refusing_differs: bool) -> set[str]:
    """The top-level keys some versions read as objects of their declared fields and others
    do not (a present value that is no object is refused by the first only), or, when the
    versions refuse undeclared keys differently, that any version reads so (such a value is
    refused as invalid by one, and the input as undeclared by the other)."""
    tops = {name.split(".")[0] for specs in declared for name in specs if "." in name}
    return {top for top in tops
            if refusing_differs or len({_holder(specs, top) for specs in declared}) > 1}


def _holder(specs: Mapping[str, InputField], name: str) -> bool:
    """Whether a version that does not declare `name` reads a top-level key `name` as the
    object of its declared fields `name.x` (the runtime checks that it is an object; a dotted
    key is a flat key, which the runtime never reads as an object)."""
    return (name not in specs and "." not in name
            and any(other.startswith(name + ".") for other in specs))


def _signature(view: View) -> tuple[Any, ...]:
    spec = view.spec
    return (spec.type, spec.optional, spec.has_default, repr(spec.default),
            tuple(spec.normalize), tuple(spec.values or ()), view.parent)


class _Groups:
    """Fields compared with each other share one dimension (union-find)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, name: str) -> None:
        self.parent.setdefault(name, name)

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.add(a)
        self.add(b)
        self.parent[self.find(a)] = self.find(b)

    def sets(self) -> list[tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for name in sorted(self.parent):
            out.setdefault(self.find(name), []).append(name)
        return [tuple(members) for members in out.values()]


class _Builder:
    def __init__(self, plans: dict[str, _FieldPlan], versions: int, reject: bool,
                 refusing: Sequence[bool]) -> None:
        self.plans = plans
        self.versions = versions
        self.reject = reject
        self.refusing = refusing
        self.space = Space([], versions, plans, {}, [], [[] for _ in range(versions)], {},
                           undeclared=[[] for _ in range(versions)])

    def add(self, members: tuple[str, ...]) -> None:
        if len(members) == 1 and None not in self.plans[members[0]].views:
            plan = self.plans[members[0]]
            kinds = plan.types()
            same_norm = len(plan.normalizations()) == 1
            if same_norm and "string" in kinds and kinds <= {"string", "enum"}:
                return self._string(plan)
            if same_norm and kinds == {"set"}:
                return self._set(plan)
        self._values(members)

    # -- one dimension of raw tuples (bool, numbers, enums, groups) -------------------
    def _values(self, members: tuple[str, ...]) -> None:
        plans = [self.plans[name] for name in members]
        separators = _separators(plans, len(members))
        per_field = [self._raws(plan, members, separators) for plan in plans]
        total = math.prod(len(raws) for raws in per_field)
        if total > MAX_REGIONS:
            raise SpaceTooLarge(f"{' and '.join(f'`{m}`' for m in members)} would need "
                                f"{total:,} regions (limit {MAX_REGIONS:,})")
        tuples = [t for t in product(*per_field) if self._accepted(members, t)]
        for name, sep in zip(members, separators):
            self.space.separators.setdefault(name, sep)
        self._dim(Dim(members, tuples, "value"), members)

    def _accepted(self, members: tuple[str, ...], raws: tuple[Any, ...]) -> bool:
        """Whether the raw values are worth a region: some version accepts them, or the
        versions refuse them differently (a key one does not declare, a misfit in another)."""
        verdicts = [self._valid(self.plans[name], raw) for name, raw in zip(members, raws)]
        strays = [self._stray(self.plans[name], raw) for name, raw in zip(members, raws)]
        status = {"undeclared" if any(s[version] for s in strays) else
                  "ok" if all(v[version] for v in verdicts) else "invalid"
                  for version in range(self.versions)}
        # when the versions refuse undeclared keys differently, a value both reject is
        # `INVALID_INPUT` in one and `UNDECLARED_FIELD` in the other with a stray key
        return "ok" in status or len(status) > 1 or len(set(self.refusing)) > 1

    def _valid(self, plan: _FieldPlan, raw: Any) -> list[bool]:
        """Per version, whether the raw value is no reason to refuse the input: a value the
        declared field takes, an object where the version reads one, or a key the version
        neither declares nor reads as an object."""
        return [view.effective(raw) is not INVALID if view is not None
                else raw is ABSENT or raw in OBJECTS or not holder
                for view, holder in zip(plan.views, plan.objects)]

    def _stray(self, plan: _FieldPlan, raw: Any) -> list[bool]:
        """Per version, whether the raw value holds a key that version does not declare and
        refuses: the key itself, or a key inside the object the version reads it as."""
        return [view is None and refuse and raw is not ABSENT
                and (raw is STRAY_OBJECT if holder else True)
                for view, refuse, holder in zip(plan.views, self.refusing, plan.objects)]

    def _raws(self, plan: _FieldPlan, members: tuple[str, ...], separators: list[str]) -> list[Any]:
        width = len(members)
        pooled = [t for name in members for t in self.plans[name].tests]
        raws: list[Any] = [] if plan.types() else [True]  # a key no version declares
        for kind in sorted(plan.types()):
            if kind == "bool":
                raws += [False, True]
            elif kind in ("int", "number"):
                raws += _numeric_raws(pooled, plan, self.plans, members, width)
            elif kind == "enum":
                raws += _enum_raws(plan)
            else:
                raws += self._text_raws(plan, members, separators, kind)
        if len(plan.normalizations()) > 1 and plan.types() & {"string", "enum", "set"}:
            self.space.approximate.append(plan.name)
        if len(plan.types()) > 1:  # `true` is not `1` (an int field's) nor `1.0`
            raws = list({(type(r), r): r for r in map(_hashable, raws)}.values())
        else:
            raws = list(dict.fromkeys(_hashable(r) for r in raws))
        kept = {(type(r), r) for r in raws}
        extra = [_hashable(r) for r in self._misfits(plan) + _integral_floats(plan, raws)]
        extra += list(OBJECTS) if any(plan.objects) else []
        raws += list({(type(r), r): r for r in extra if (type(r), r) not in kept}.values())
        if self._absent_matters(plan):
            raws.append(ABSENT)
        return raws

    def _text_raws(self, plan: _FieldPlan, members: tuple[str, ...], separators: list[str],
                   kind: str) -> list[Any]:
        """Strings (or sets) for a field in a group or with differing normalisations: every
        subset of the group's text fields gets full-partition representatives that all its
        normalisations keep, so any pattern of equality among them has a representative."""
        text_members = [m for m in members if self.plans[m].types() & {"string", "enum", "set"}]
        defaults = _group_defaults(self.plans, members, ("string", "enum"))
        own = members.index(plan.name)
        out: list[Any] = []
        for size in range(1, len(text_members) + 1):
            for block in combinations(text_members, size):
                if plan.name not in block:
                    continue
                steps = [list(v.spec.normalize) for m in block for v in self.plans[m].declared()]
                tests = [t for m in block for _, t in self.plans[m].tests if t.other is None]
                enums = [v for m in block for view in self.plans[m].declared()
                         for v in view.spec.values or []] + defaults
                sep = separators[members.index(block[0])] if size > 1 else separators[own]
                out += _string_reps(tests, steps, sep, enums,
                                    variants=len(plan.normalizations()) > 1)
        if kind == "set":
            members_tested = sorted({str(t.value) for _, t in plan.tests if t.op == "contains"})
            return [tuple(sorted(c)) for n in range(len(members_tested) + 1)
                    for c in combinations(members_tested, n)] + [(separators[own],)]
        return out

    def _misfits(self, plan: _FieldPlan) -> list[Any]:
        """For a field the versions declare differently (or only some declare): values of
        the wrong type for some of them, one per pattern of which versions reject it."""
        if len({None if v is None else _signature(v) for v in plan.views}) == 1 and len(
                set(self.refusing)) == 1:
            return []  # when the versions refuse undeclared keys alike
        found: dict[tuple[bool, ...], Any] = {}
        for raw in _MISFITS:
            found.setdefault(tuple(self._valid(plan, raw)), raw)
        return list(found.values())

    def _absent_matters(self, plan: _FieldPlan) -> bool:
        if any(view is None and (refuse or holder) for view, refuse, holder
               in zip(plan.views, self.refusing, plan.objects)):
            return True  # the only value a version that does not declare it takes
        outcomes = {_absent_outcome(view) for view in plan.declared()}
        if len(outcomes) > 1:
            return True
        (outcome,) = outcomes
        return outcome == "missing"

    # -- strings: key dimension and affix dimensions ------------------------------------
    def _string(self, plan: _FieldPlan) -> None:
        steps = list(plan.declared()[0].spec.normalize)
        tests = [t for _, t in plan.tests]
        constants = sorted({c for t in tests for c in _equality_constants(t)
                            if fixed(c, steps)})
        for view in plan.declared():
            if view.spec.type == "enum":
                constants = sorted(set(constants) | {v for v in view.spec.values or []
                                                     if fixed(v, steps)})
        prefixes = sorted({str(t.value) for t in tests if t.op == "starts_with" and t.value
                           and piece_fits(str(t.value), steps, start=True)})
        suffixes = sorted({str(t.value) for t in tests if t.op == "ends_with" and t.value
                           and piece_fits(str(t.value), steps, end=True)})
        inside = sorted({str(t.value) for t in tests if t.op == "contains" and t.value
                         and piece_fits(str(t.value), steps)})
        if len(constants) + 2 > MAX_REGIONS:
            raise SpaceTooLarge(f"`{plan.name}` is compared with {len(constants):,} texts "
                                f"(limit {MAX_REGIONS:,})")
        sep = _separator([plan], constants + prefixes + suffixes + inside, steps)
        plain = next((p for p in PLAIN_FREE if fixed(p, steps) and p not in constants
                      and not any(x in p for x in prefixes + suffixes + inside)), None)
        self.space.separators[plan.name] = plain if plain and not (prefixes or suffixes or inside) \
            else sep
        keys: list[Any] = [*constants, FREE]
        if self._absent_matters(plan):
            keys.insert(0, ABSENT)
        keys = [k for k in keys if any(self._valid(plan, k))]
        dims = [Dim((plan.name,), [(k,) for k in keys], "value")]
        if FREE in keys:
            if prefixes:
                dims.append(Dim((plan.name,), [NA, "", *prefixes], "prefix"))
            if suffixes:
                dims.append(Dim((plan.name,), [NA, "", *suffixes], "suffix"))
            dims += [Dim((plan.name,), [NA, False, True], "contains", m) for m in inside]
        self._dim(dims[0], (plan.name,), extra=dims[1:], free=FREE)
        self._string_closure(plan.name)

    def _string_closure(self, name: str) -> None:
        """A free string with a longer piece contains every text inside that piece."""
        dims = self.space.field_dims[name]
        by_kind: dict[str, list[int]] = {}
        for index in dims[1:]:
            by_kind.setdefault(self.space.dims[index].kind, []).append(index)
        contains = by_kind.get("contains", [])
        for c in contains:
            text = self.space.dims[c].pattern
            no = {c: 1 << 1}
            for kind in ("prefix", "suffix"):
                for index in by_kind.get(kind, []):
                    dim = self.space.dims[index]
                    mask = _scan(dim, lambda v: v is not NA and text in v)  # noqa: B023
                    if mask:
                        self.space.validity.append({index: mask, **no})
            for other in contains:
                longer = self.space.dims[other].pattern
                if other != c and text in longer:
                    self.space.validity.append({other: 1 << 2, **no})

    # -- sets: key dimension (present or absent) and one dimension per member ------------
    def _set(self, plan: _FieldPlan) -> None:
        steps = list(plan.declared()[0].spec.normalize)
        members = sorted({str(t.value) for _, t in plan.tests
                          if t.op == "contains" and fixed(str(t.value), steps)})
        keys: list[Any] = [PRESENT]
        if self._absent_matters(plan):
            keys.insert(0, ABSENT)
        keys = [k for k in keys if any(self._valid(plan, k))]
        extra = [Dim((plan.name,), [NA, False, True], "member", m) for m in members]
        self._dim(Dim((plan.name,), [(k,) for k in keys], "value"), (plan.name,), extra=extra,
                  free=PRESENT)

    # -- bookkeeping -------------------------------------------------------------------
    def _dim(self, main: Dim, members: tuple[str, ...], *, extra: Sequence[Dim] = (),
             free: Any = None) -> None:
        space = self.space
        start = len(space.dims)
        space.dims.append(main)
        space.dims.extend(extra)
        for name in members:
            space.field_dims[name] = [start] + list(range(start + 1, start + 1 + len(extra)))
        if extra:
            free_mask = _scan(main, lambda raws: raws[0] is free)
            others = main.full & ~free_mask
            for offset in range(1, len(extra) + 1):
                space.validity.append({start: free_mask, start + offset: 1})  # free, yet n/a
                if others:
                    space.validity.append({start: others, start + offset: space.dims[start + offset].full & ~1})
        for version in range(self.versions):
            rejected = _scan(main, lambda raws: not all(  # noqa: B023
                self._valid(self.plans[name], raw)[version]  # noqa: B023
                for name, raw in zip(main.fields, raws)))
            if rejected:
                space.rejected[version].append({start: rejected})
            stray = _scan(main, lambda raws: any(  # noqa: B023
                self._stray(self.plans[name], raw)[version]  # noqa: B023
                for name, raw in zip(main.fields, raws)))
            if stray:
                space.undeclared[version].append({start: stray})

    def finish(self) -> None:
        space = self.space
        for name, plan in self.plans.items():
            if name in space.field_dims:
                continue
            filler = _filler(plan)
            if filler is not ABSENT:
                space.fillers[name] = filler
            elif any(_absent_outcome(view) == "invalid" for view in plan.declared()):
                # required, and no value is valid (a field another field lives under): no input
                # is valid at all, which a dimension without regions says
                self._dim(Dim((name,), [], "value"), (name,))


def _integral_floats(plan: _FieldPlan, raws: list[Any]) -> list[Any]:
    """For a field one version declares `int` and another `number`: each integer also as the
    `number` it equals (`1.0`), which the `int` version rejects and the other reads as `1`."""
    if not {"int", "number"} <= plan.types():
        return []
    return [float(raw) for raw in raws if type(raw) is int and float(raw) == raw]


_MISFITS: tuple[Any, ...] = (True, 1, 0.5, "x", ("x",))
"""Raw values of every type: at least one is of the wrong type for any declared field."""


def _absent_outcome(view: View) -> str:
    spec = view.spec
    if spec.has_default:
        return "default:" + repr(default_value(spec))
    return "missing" if spec.optional else "invalid"


def _filler(plan: _FieldPlan) -> Any:
    """A raw value every version accepts, for a field no test reads (ABSENT when not needed)."""
    views = plan.declared()
    if all(view.spec.optional or view.spec.has_default for view in views):
        return ABSENT
    spec = views[0].spec
    options: dict[str, list[Any]] = {
        "bool": [False], "int": [0], "number": [0], "string": [""], "set": [[]],
        "enum": [v for v in spec.values or [] if fixed(v, spec.normalize)],
    }
    candidates = options[spec.type]
    for raw in candidates:
        if all(view.effective(raw) is not INVALID for view in views):
            return raw
    return ABSENT


def _hashable(raw: Any) -> Any:
    return tuple(raw) if isinstance(raw, list) else raw


def _equality_constants(test: Test) -> list[str]:
    if test.op == "in" and isinstance(test.value, list):
        return [str(v) for v in test.value]
    if test.op == "==" and isinstance(test.value, str):
        return [test.value]
    return []


def _enum_raws(plan: _FieldPlan) -> list[str]:
    out: list[str] = []
    variants = len(plan.normalizations()) > 1
    for view in plan.declared():
        if view.spec.type == "enum":
            for value in view.spec.values or []:
                out += _case_variants(value) if variants else [value]
    return out


def _case_variants(text: str) -> list[str]:
    return [text, text.lower(), text.upper(), f" {text} ", f" {text.lower()} ", f" {text.upper()} "]


def _separators(plans: Sequence[_FieldPlan], count: int) -> list[str]:
    texts = [str(v) for p in plans for _, t in p.tests
             for v in (t.value if isinstance(t.value, list) else [t.value]) if isinstance(v, str)]
    texts += [v for p in plans for view in p.declared() for v in view.spec.values or []]
    steps = [list(v.spec.normalize) for p in plans for v in p.declared()]
    out: list[str] = []
    for _ in range(count):
        out.append(_separator(plans, texts + out, *steps))
    return out


def _separator(plans: Sequence[_FieldPlan], texts: Sequence[str], *steps: Sequence[str]) -> str:
    """A character no text contains, that no normalisation changes and that is no space."""
    for char in SEPARATORS:
        if any(char in text for text in texts):
            continue
        if all(fixed(char, s) for s in steps) and char.lower() == char.upper():
            return char
    names = ", ".join(p.name for p in plans)
    raise SpaceTooLarge(f"no separator character is left for {names}")


def _string_reps(tests: Sequence[Test], steps: Sequence[Sequence[str]], sep: str,
                 enums: Sequence[str] = (), *, variants: bool) -> list[str]:
    """One string per combination of the tests' answers a string can give (constants, the
    values of enums it may equal, and free strings with each longest prefix, longest suffix and
    set of contained texts), kept only when every normalisation in `steps` leaves it as it is."""
    def keeps(text: str) -> bool:
        return all(fixed(text, s) for s in steps)

    constants = sorted({c for t in tests for c in _equality_constants(t)} | set(enums))
    prefixes = sorted({str(t.value) for t in tests if t.op == "starts_with"})
    suffixes = sorted({str(t.value) for t in tests if t.op == "ends_with"})
    inside = sorted({str(t.value) for t in tests if t.op == "contains"})
    total = (len(prefixes) + 1) * (len(suffixes) + 1) * (1 << len(inside))
    if total > MAX_REGIONS:
        raise SpaceTooLarge(f"{total:,} combinations of text tests in a comparison group")
    out = list(constants)
    if variants:
        out += [v for c in constants for v in _case_variants(c)]
    for prefix, suffix in product(["", *prefixes], ["", *suffixes]):
        for n in range(len(inside) + 1):
            for chosen in combinations(inside, n):
                out.append(prefix + sep + "".join(m + sep for m in chosen) + suffix)
    return [s for s in dict.fromkeys(out) if keeps(s) or variants]


# ------------------------------------------------------------------------------ numbers

def _group_defaults(plans: Mapping[str, _FieldPlan], members: Sequence[str],
                    kinds: tuple[str, ...]) -> list[Any]:
    """The defaults of a comparison group's fields of ``kinds`` (every version's): an absent
    field is its default, which the other fields of its group are compared with, so each is a
    constant of their regions too. None for a field alone (its own tests read its default)."""
    if len(members) < 2:
        return []
    return [_number(value) if isinstance(value, (int, float)) else value
            for name in members for view in plans[name].declared()
            if view.spec.has_default and view.spec.type in kinds
            for value in (default_value(view.spec),)
            if not isinstance(value, bool)]


def _numeric_raws(pooled: Sequence[tuple[int, Test]], plan: _FieldPlan,
                  plans: Mapping[str, _FieldPlan], members: Sequence[str],
                  width: int) -> list[int | float]:
    constants = sorted({_number(t.value) for _, t in pooled
                        if isinstance(t.value, (int, float)) and not isinstance(t.value, bool)}
                       | set(_group_defaults(plans, members, ("int", "number"))))
    types = {view.spec.type for name in members for view in plans[name].declared()
             if view.spec.type in ("int", "number")}
    own = {view.spec.type for view in plan.declared() if view.spec.type in ("int", "number")}
    points = numeric_points(constants, width=width, integral="number" not in types,
                            mixed=types == {"int", "number"})
    if own == {"int"}:
        return [p for p in points if isinstance(p, int)]
    return points


def _number(value: float) -> int | float:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def numeric_points(constants: Sequence[int | float], *, width: int, integral: bool,
                   mixed: bool) -> list[int | float]:
    """Representative numbers: each constant, and in every gap between and beyond them enough
    points that any `width` values in the gap can be mapped to them keeping their order (and,
    when `mixed`, keeping which are integers)."""
    out: list[int | float] = [_number(c) for c in constants
                              if not integral or float(c).is_integer()]
    bounds: list[float | None] = [None, *constants, None]
    for lo, hi in zip(bounds, bounds[1:]):
        out += _gap_points(lo, hi, width, integral, mixed)
    return sorted(set(out))


def _gap_points(lo: float | None, hi: float | None, width: int, integral: bool,
                mixed: bool) -> list[int | float]:
    """Points strictly inside one gap. Integers only for int fields; for number fields any
    `width` distinct values (integers first); when int and number fields share the gap,
    `width` integers and `width` fractions between every two of them, so that the integers
    among any `width` values map to integers and the others to fractions, in order."""
    ints: list[int | float] = list(_integers_between(lo, hi, width))
    if integral:
        return ints
    if not mixed:
        return ints + _fractions_between(lo, hi, width - len(ints)) if len(ints) < width \
            else ints
    if not ints:
        return _fractions_between(lo, hi, width)
    upper = ints[-1] + 1 if hi is None or ints[-1] + 1 < hi else hi
    edges: list[float | None] = [lo, *ints, upper]
    points: list[int | float] = list(ints)
    for a, b in zip(edges, edges[1:]):
        points += _fractions_between(a, b, width)
    return points


def _integers_between(lo: float | None, hi: float | None, count: int) -> list[int]:
    """The `count` integers strictly inside (lo, hi) nearest to its lower end (or, when it is
    unbounded below, nearest its upper end); fewer when the gap holds fewer."""
    if lo is None and hi is None:
        return list(range(count))
    if lo is None:
        assert hi is not None
        top = math.ceil(hi) - 1
        return list(range(top - count + 1, top + 1))
    start = math.floor(lo) + 1
    stop = start + count if hi is None else min(start + count, math.ceil(hi))
    return list(range(start, stop))


def _fractions_between(lo: float | None, hi: float | None, count: int) -> list[float]:
    """Up to `count` non-integral floats strictly inside (lo, hi), spread out."""
    if lo is None and hi is None:
        lo, hi = 0, 1
    elif lo is None:
        assert hi is not None
        lo = math.ceil(hi) - 1 if math.ceil(hi) - 1 < hi else hi - 1
    elif hi is None:
        hi = math.floor(lo) + 1
    out: list[float] = []
    parts = 1 << count.bit_length()  # a power of two above count: short decimal fractions
    for step in range(1, count + 1):
        point = lo + (hi - lo) * step / parts
        if lo < point < hi and not float(point).is_integer():
            out.append(float(point))
    current = float(lo)
    while len(out) < count:
        current = math.nextafter(current, math.inf)
        if not current < hi:
            break
        if not current.is_integer() and current not in out:
            out.append(current)
    return sorted(set(out))[:count]


__all__ = ["ABSENT", "FREE", "INVALID", "MISSING", "Box", "Dim", "Space",
           "SpaceTooLarge", "View", "build_space", "holds", "numeric_points"]
