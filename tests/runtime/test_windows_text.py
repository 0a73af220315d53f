"""The stored windows text (the SQL stores' `limit_windows` column) is the JSON older runtimes
of the same schema version read: each limit's key to its times, keys sorted, no spaces, exactly
as `json.dumps(..., sort_keys=True, separators=(",", ":"))` writes it; it reads back as the
same windows."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from sentra_runtime.stores.schema import stored_state, windows_text

TIMES = st.lists(st.integers(min_value=-(2**63), max_value=2**63), max_size=12).map(
    lambda times: tuple(sorted(times)))
WINDOWS = st.dictionaries(st.text(max_size=40), TIMES, min_size=1, max_size=6)


def reference_text(windows: dict[str, tuple[int, ...]]) -> str:
    return json.dumps({key: list(times) for key, times in windows.items()}, sort_keys=True,
                      separators=(",", ":"))


@given(WINDOWS)
def test_the_text_is_the_sorted_compact_json_and_reads_back(
        windows: dict[str, tuple[int, ...]]) -> None:
    text = windows_text((1, 0, False, None, windows))
    assert text == reference_text(windows)
    assert text is not None and stored_state(1, 0, False, None, text)[4] == windows


def test_a_time_seen_before_is_written_the_same() -> None:
    first = {"rule R per 60": (1_700_000_000_000_000, 1_700_000_001_000_000)}
    second = {"rule R per 60": (1_700_000_001_000_000, 1_700_000_002_000_000),
              'group "g" * per 60': (1_700_000_001_000_000,)}
    for windows in (first, second, dict(first)):
        assert windows_text((1, 0, False, None, windows)) == reference_text(windows)


def test_no_windows_is_no_text() -> None:
    assert windows_text((1, 0, False)) is None
    assert windows_text((1, 0, False, None, {})) is None
