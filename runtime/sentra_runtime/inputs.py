"""Reading and checking an action's input: the one definition (docs/table.md, "Input").

Everything that reads the fields of an action reads them through this module, or is checked
against it: the generated matcher (:mod:`sentra_runtime.codegen`) reads ordinary input with
straight-line code specialised per policy and hands anything else to :meth:`InputSchema.read`
(the tests check that the two agree on arbitrary input); the reference interpreter
(``sentra_lang.interpreter``) and the decision server's validation (``sentra_lang.server.gate``)
call it directly.

The rules, in short:

* a dotted field (``context.eligibility_verified``) is read from nested objects
  (``{"context": {"eligibility_verified": true}}``) or from the flat key
  (``{"context.eligibility_verified": true}``); giving it both ways is refused;
* ``null`` counts as absent, for a field and for an object on its path;
* an object on a field's path that is present but not an object (``{"context": 5}``) is
  refused, never read as an empty object;
* present values are checked strictly, never coerced; strings are normalised as declared; an
  absent field takes its default, stays absent when optional, and is refused when required;
* a key the policy does not declare (one that is not a declared field, an object holding
  declared fields, or the flat key of a declared field) is refused or ignored, as the policy's
  ``undeclared_fields`` setting says.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentra_runtime.policy import InputSpec

REFUSE = "refuse"
IGNORE = "ignore"
UNDECLARED_MODES = (REFUSE, IGNORE)
"""The values of the ``undeclared_fields`` setting."""

SEQUENCES = (list, tuple, set, frozenset)
"""What a ``set`` field accepts (JSON gives lists)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""An absent value (``null`` included)."""

# -- the problems input can have ---------------------------------------------------------------

UNDECLARED = "undeclared"
NOT_AN_OBJECT = "not_object"
GIVEN_TWICE = "given_twice"
REQUIRED = "required"
WRONG_TYPE = "wrong_type"
NOT_IN_ENUM = "not_in_enum"

_EXPECTED = {"bool": "a boolean", "int": "an integer", "number": "a number",
             "string": "a string", "enum": "a string", "set": "an array of strings"}


@dataclass(frozen=True)
class Problem:
    """Why an input is refused: what is wrong (``kind``), where (``field``, a dotted path:
    the declared field, the object on its path, or the undeclared key), and the value found
    there (:data:`MISSING` for an absent required field)."""

    kind: str
    field: str
    value: Any
    spec: InputSpec | None = None
    """The declared field, for ``required``, ``wrong_type``, ``not_in_enum``, ``given_twice``."""
    suggestion: str | None = None
    """For an undeclared key: the closest declared name, if one is close."""

    @property
    def reason(self) -> str:
        """The reason of the decision that blocks the input; it names the field."""
        name = f"`{self.field}`"
        if self.kind == UNDECLARED:
            hint = f"; did you mean `{self.suggestion}`?" if self.suggestion else "."
            return f"Field {name} is not declared by the policy{hint}"
        if self.kind == NOT_AN_OBJECT:
            return f"Field {name} must be an object, got {json_type(self.value)}."
        if self.kind == GIVEN_TWICE:
            return (f"Field {name} is given twice: inside its object and as the flat key "
                    f"{name}.")
        if self.kind == REQUIRED:
            return f"Field {name} is required but missing."
        assert self.spec is not None
        if self.kind == NOT_IN_ENUM:
            allowed = ", ".join(f'"{item}"' for item in self.spec.values or ())
            return f"Field {name} must be one of {allowed}, got {render_json(self.value)}."
        expected = _EXPECTED[self.spec.type]
        if isinstance(self.value, float) and not math.isfinite(self.value):
            return f"Field {name} must be {expected}, got {self.value!r}."
        got = json_type(self.value)
        if self.spec.type == "set" and isinstance(self.value, SEQUENCES):
            got = "an array with a non-string item"
        return f"Field {name} must be {expected}, got {got}."

    @property
    def error(self) -> tuple[str, str]:
        """``(type, message)`` of the HTTP 422 answer that refuses the input, in the style of
        pydantic's validation errors (the location names the field)."""
        if self.kind == UNDECLARED:
            hint = ""
            if self.suggestion:
                head, _, _ = self.field.rpartition(".")
                shown = self.suggestion.removeprefix(head + ".") if head else self.suggestion
                hint = f"; did you mean `{shown}`?"
            return "extra_forbidden", f"The policy declares no such field{hint}"
        if self.kind == NOT_AN_OBJECT:
            return "dict_type", f"Input should be an object, not {describe(self.value)}"
        if self.kind == GIVEN_TWICE:
            return ("given_twice", "Input gives this field twice: inside its object and as "
                    f"the flat key `{self.field}`")
        if self.kind == REQUIRED:
            return "missing", "Field required"
        assert self.spec is not None
        if self.kind == NOT_IN_ENUM:
            allowed = ", ".join(f"'{item}'" for item in self.spec.values or ())
            return "enum", f"Input should be one of {allowed}"
        return _type_error(self.spec.type, self.value)


def _type_error(kind: str, value: Any) -> tuple[str, str]:
    if kind == "bool":
        return "bool_type", f"Input should be a boolean (true or false), not {describe(value)}"
    if kind in ("int", "number"):
        if isinstance(value, float) and not math.isfinite(value):
            return "finite_number", "Input should be a finite number"
        if kind == "int" and is_number(value):
            return "int_type", "Input should be a whole number"
        whole = "whole " if kind == "int" else ""
        return f"{kind}_type", f"Input should be a {whole}number, not {describe(value)}"
    if kind in ("string", "enum"):
        return "string_type", f"Input should be a string, not {describe(value)}"
    return "set_type", "Input should be an array of strings"


# -- types -------------------------------------------------------------------------------------

def is_int(value: Any) -> bool:
    """An integer of any size, not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An integer (not a boolean) or a finite float."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def is_string_collection(value: Any) -> bool:
    return isinstance(value, SEQUENCES) and all(isinstance(item, str) for item in value)


TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "bool": lambda value: isinstance(value, bool),
    "int": is_int,
    "number": is_number,
    "string": lambda value: isinstance(value, str),
    "enum": lambda value: isinstance(value, str),
    "set": is_string_collection,
}
"""Per declared type: whether a present value has it (before normalisation and enum values)."""

_STEPS: dict[str, Callable[[str], str]] = {"trim": str.strip, "lower": str.lower,
                                           "upper": str.upper}


def normalize(text: str, steps: Sequence[str]) -> str:
    """``text`` with normalisation steps (``trim``, ``lower``, ``upper``) applied in order."""
    for step in steps:
        text = _STEPS[step](text)
    return text


def normalizer(steps: Sequence[str]) -> Callable[[str], str]:
    """The function applying normalisation steps (``trim``, ``lower``, ``upper``) in order."""
    functions = [_STEPS[step] for step in steps]

    def normalize(text: str) -> str:
        for function in functions:
            text = function(text)
        return text

    return normalize


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def describe(value: Any) -> str:
    """A value as an HTTP 422 message names it: ``the string 'x'``, ``a number``, ..."""
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def render_json(value: Any) -> str:
    """A value as JSON text, for reasons and explanations (``none`` when absent)."""
    import json
    from json.encoder import encode_basestring

    if value is None or value is MISSING:
        return "none"
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    return json.dumps(value, ensure_ascii=False)


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (a likely typo), if one is close enough: by
    similarity, then ignoring case, then by the last part of a dotted name."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {candidate.lower(): candidate for candidate in pool}
    if name.lower() in lowered:
        return lowered[name.lower()]
    last = name.rsplit(".", 1)[-1]
    return next((candidate for candidate in pool if candidate.rsplit(".", 1)[-1] == last), None)


def lookup(fields: Mapping[str, Any], name: str) -> Any:
    """The raw value of the dotted field ``name`` in ``fields`` (:data:`MISSING` when absent),
    or a :class:`Problem`: an object on its path that is not an object, or the field given both
    inside its object and as a flat key."""
    parts = name.split(".")
    node: Any = fields
    for depth, part in enumerate(parts[:-1]):
        node = node.get(part)
        if node is None:
            node = MISSING
            break
        if not isinstance(node, Mapping):
            return Problem(NOT_AN_OBJECT, ".".join(parts[:depth + 1]), node)
    nested = MISSING if node is MISSING else node.get(parts[-1], MISSING)
    if nested is None:
        nested = MISSING
    if len(parts) == 1:
        return nested
    flat = fields.get(name, MISSING)
    if flat is None or flat is MISSING:
        return nested
    if nested is not MISSING:
        return Problem(GIVEN_TWICE, name, flat)
    return flat


# -- the schema ----------------------------------------------------------------------------------

class InputSchema:
    """A policy's declared input, ready to read actions' fields with.

    ``undeclared`` is the policy's ``undeclared_fields`` setting (:data:`REFUSE` or
    :data:`IGNORE`).
    """

    def __init__(self, specs: Sequence[InputSpec], undeclared: str = REFUSE) -> None:
        if undeclared not in UNDECLARED_MODES:
            raise ValueError(f"undeclared_fields must be one of {', '.join(UNDECLARED_MODES)}")
        self.specs = tuple(specs)
        self.undeclared = undeclared
        self.names = frozenset(spec.name for spec in self.specs)
        """The declared fields' dotted names (also their flat keys)."""
        members: dict[str, set[str]] = {"": set()}
        for spec in self.specs:
            parts = spec.name.split(".")
            for depth in range(len(parts)):
                parent = ".".join(parts[:depth])
                members.setdefault(parent, set()).add(parts[depth])
        self.members = {parent: frozenset(keys) for parent, keys in members.items()}
        """Per object path (``""`` for the input itself): the keys it may hold."""
        self.objects = frozenset(path for path in self.members if path)
        """The paths of the objects that hold declared fields (``context``)."""
        self.positions = {spec.name: index for index, spec in enumerate(self.specs)}
        """Per declared field: its index in :attr:`specs` (and in :meth:`read`'s values)."""
        self.defaults = tuple(self._default(spec) for spec in self.specs)
        """Per field: its normalised default, ``None`` when optional, :data:`MISSING` when
        required."""
        self._normalize = tuple(normalizer(spec.normalize) for spec in self.specs)
        self._candidates = sorted(self.names | self.objects)

    def _default(self, spec: InputSpec) -> Any:
        if not spec.has_default:
            return None if spec.optional else MISSING
        if spec.type in ("string", "enum"):
            return normalizer(spec.normalize)(spec.default)
        if spec.type == "set":
            return frozenset(normalizer(spec.normalize)(item) for item in spec.default)
        return spec.default

    # -- reading -------------------------------------------------------------------------------

    def read(self, fields: Mapping[str, Any]) -> tuple[Any, ...] | Problem:
        """The declared fields' values in declared order (``None`` when absent), or the first
        problem: an undeclared key (when refused; the first in sorted order), then the declared
        fields' problems in declared order."""
        if self.undeclared == REFUSE:
            stray = self.undeclared_keys(fields)
            if stray:
                return self._undeclared(*stray[0])
        values = []
        for index in range(len(self.specs)):
            value = self.value(index, fields)
            if value.__class__ is Problem:
                return value
            values.append(value)
        return tuple(values)

    def problems(self, fields: Mapping[str, Any]) -> list[Problem]:
        """Every problem of the input: undeclared keys (when refused), then per declared field
        (an object on its path that is not an object is reported once)."""
        found = ([self._undeclared(*stray) for stray in self.undeclared_keys(fields)]
                 if self.undeclared == REFUSE else [])
        seen: set[tuple[str, str]] = set()
        for index in range(len(self.specs)):
            value = self.value(index, fields)
            if value.__class__ is Problem and (value.kind, value.field) not in seen:
                seen.add((value.kind, value.field))
                found.append(value)
        return found

    def value(self, index: int, fields: Mapping[str, Any]) -> Any:
        """Field ``index``'s value (after defaults and normalisation; ``None`` when absent and
        optional), or its :class:`Problem`."""
        raw = self.lookup(fields, self.specs[index].name)
        if raw.__class__ is Problem:
            return raw
        return self.check(index, raw)

    def lookup(self, fields: Mapping[str, Any], name: str) -> Any:
        """:func:`lookup`, with the declared field attached to a ``given_twice`` problem."""
        raw = lookup(fields, name)
        if raw.__class__ is Problem and raw.kind == GIVEN_TWICE:
            return Problem(GIVEN_TWICE, name, raw.value, self._spec(name))
        return raw

    def check_field(self, name: str, raw: Any) -> Any:
        """:meth:`check` of the declared field ``name`` (``KeyError`` when there is none)."""
        return self.check(self.positions[name], raw)

    def check(self, index: int, raw: Any) -> Any:
        """Field ``index``'s value for the raw value ``raw`` (:data:`MISSING` when absent), or
        its :class:`Problem`."""
        spec = self.specs[index]
        if raw is MISSING:
            default = self.defaults[index]
            return Problem(REQUIRED, spec.name, MISSING, spec) if default is MISSING else default
        if not TYPE_CHECKS[spec.type](raw):
            return Problem(WRONG_TYPE, spec.name, raw, spec)
        if spec.type == "set":
            normalize = self._normalize[index]
            return frozenset(normalize(str(item)) for item in raw)
        if spec.type in ("string", "enum"):
            value = self._normalize[index](str(raw))
            if spec.type == "enum" and value not in (spec.values or ()):
                return Problem(NOT_IN_ENUM, spec.name, raw, spec)
            return value
        return raw

    # -- undeclared keys -----------------------------------------------------------------------

    def undeclared_keys(self, fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """``(dotted path, value)`` of every key the policy does not declare, sorted by path.

        Declared are: the declared fields, the objects that hold them (followed inside when
        they are objects), and the flat keys of declared fields. A key whose value is ``null``
        is absent, declared or not.
        """
        found: list[tuple[str, Any]] = []
        self._undeclared_in(fields, "", found)
        return sorted(found, key=lambda item: item[0])

    def _undeclared_in(self, node: Mapping[Any, Any], path: str,
                       found: list[tuple[str, Any]]) -> None:
        members = self.members.get(path, frozenset())
        for key, value in node.items():
            if value is None:
                continue
            inner = f"{path}.{key}" if path else str(key)
            if key in members:
                if inner in self.objects and isinstance(value, Mapping):
                    self._undeclared_in(value, inner, found)
            elif not (path == "" and key in self.names):
                found.append((inner, value))

    def _undeclared(self, path: str, value: Any) -> Problem:
        return Problem(UNDECLARED, path, value, suggestion=closest(path, self._candidates))

    def _spec(self, name: str) -> InputSpec:
        return self.specs[self.positions[name]]
