"""sentra-lang testing."""

SUFFIX = ".sentra-test"
"""The file suffix of scenario suites (here so that the pytest plugin can test for it without
importing the runner)."""
