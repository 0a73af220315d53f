"""Without a database the PostgreSQL tests skip with a message, except in CI, where they fail."""

from __future__ import annotations

import pytest

from tests.pg_fixtures import unavailable


def test_without_a_database_tests_skip_locally_and_fail_in_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for local in (None, "false", "0"):
        if local is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", local)
        with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests need a server"):
            unavailable("no initdb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI: PostgreSQL tests need a server"):
        unavailable("no initdb")
