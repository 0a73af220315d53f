"""The PostgreSQL store chains records in the database from the body the runtime split around
`prev` and `seq` (`audit.seal_parts`): joined, the parts are exactly the body `seal_text` gives,
for any record."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import audit
from sentra_runtime.policy import canonical_json

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(), lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
KEYS = st.text(max_size=6).filter(lambda key: key not in ("prev", "seq"))


@settings(max_examples=500)
@given(st.dictionaries(KEYS, VALUES, max_size=8), st.integers(1, 2**62),
       st.none() | st.just("sha256:" + "ab" * 32))
def test_the_parts_join_into_the_sealed_body(record: dict[str, Any], seq: int,
                                             prev: str | None) -> None:
    before, between, after = audit.seal_parts(record)
    body, _ = audit.seal_text(copy.deepcopy(record), seq, prev)
    assert before + canonical_json(prev) + between + str(seq) + after == body


ANY_NUMBERS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=6), ANY_NUMBERS, max_size=8), st.integers(1, 2**62),
       st.none() | st.just("sha256:" + "ab" * 32))
def test_the_sealed_body_is_the_canonical_json_of_the_record(
        record: dict[str, Any], seq: int, prev: str | None) -> None:
    """`seal_text` encodes with an encoder built once: byte for byte `canonical_json` (which
    every hash uses) of the record with its seq and prev, and the hash is that text's, for any
    record: non-ASCII text, NaN and infinities, big integers, nesting."""
    sealed = copy.deepcopy(record)
    body, digest = audit.seal_text(sealed, seq, prev)
    expected = canonical_json({**record, "seq": seq, "prev": prev})
    assert body == expected
    assert digest == audit.text_hash(expected)
    assert sealed["seq"] == seq and sealed["prev"] == prev
