"""Reading JSON text that may be hostile: the one place that turns every way Python's decoder
can refuse a text into one error.

``json.loads`` refuses a text in three ways: ``json.JSONDecodeError`` (not JSON, with a
position), ``ValueError`` (an integer of more digits than Python converts) and
``RecursionError`` (arrays or objects nested deeper than the decoder goes). Audit records
(stored and exported), stored windows, tickets as verification reads them, and compiled tables
loaded from text are read with :func:`loads`, so an edited or hostile text is reported as
unreadable, never a traceback. (The SQL stores' own reads of a ticket or a saved table still
use ``json.loads``.)
"""

from __future__ import annotations

import json
from typing import Any


class JSONTextError(ValueError):
    """A text that is not JSON Python can read; the message says why (and where, when the
    decoder says)."""


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, or :class:`JSONTextError` saying why the text cannot be read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise JSONTextError(f"{error.msg} (line {error.lineno}, column {error.colno})") \
            from None
    except RecursionError:
        raise JSONTextError("it nests too deeply") from None
    except ValueError as error:   # an integer of more digits than Python converts
        raise JSONTextError(str(error).split(";")[0]) from None
