"""Reading JSON text that may be hostile: the one place that turns every way Python's decoder
can refuse a text into one error.

``json.loads`` refuses a text in three ways: ``json.JSONDecodeError`` (not JSON, with a
position), ``ValueError`` (an integer of more digits than Python converts) and
``RecursionError`` (arrays or objects nested deeper than the decoder goes). Audit records
(stored and exported), stored windows, tickets, compiled tables (loaded from text or saved in a
shared store), the server's request bodies and the SDK's answers are read with :func:`loads`,
so an edited or hostile text is reported as unreadable, never a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONTextError(ValueError):
    """A text that is not JSON Python can read; the message says why (and where, when the
    decoder says). :attr:`problem` is the reason alone and :attr:`position` the offset in the
    text where the decoder stopped, when it says."""

    def __init__(self, problem: str, position: int | None = None,
                 line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(problem + where)
        self.problem = problem
        self.position = position


def loads(text: str | bytes, *, constants: bool = True) -> Any:
    """``json.loads(text)``, or :class:`JSONTextError` saying why the text cannot be read.
    With ``constants=False`` the ``NaN``, ``Infinity`` and ``-Infinity`` that ``json.loads``
    accepts (they are not JSON) are refused too. A refusal of a ``str`` without a position (a
    constant, an integer of too many digits, too deep a nesting) is of a text that is JSON in
    its syntax; ``bytes`` that are not UTF-8 are refused without one too."""
    try:
        return json.loads(text, parse_constant=None if constants else _refuse_constant)
    except json.JSONDecodeError as error:
        raise JSONTextError(error.msg, error.pos, error.lineno, error.colno) from None
    except RecursionError:
        raise JSONTextError("it nests too deeply") from None
    except ValueError as error:   # an integer of more digits than Python converts, a constant
        raise JSONTextError(_plain(str(error))) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"`{name}`, which is not JSON")


_TOO_LONG = re.compile(r"integer string conversion: value has (\d+) digits")


def _plain(message: str) -> str:
    """The decoder's refusal in plain words: Python's advice to raise its limit on integer
    digits (``sys.set_int_max_str_digits``) is not for the reader of a hostile text."""
    too_long = _TOO_LONG.search(message)
    if too_long is not None:
        return f"an integer of {too_long.group(1)} digits, too long to read"
    return message
