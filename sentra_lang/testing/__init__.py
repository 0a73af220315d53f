"""sentra-lang testing."""

SUFFIX = ".sentra-test"
"""The file suffix of scenario suites (here so that the pytest plugin can test for it without
importing the runner)."""


class NothingToCheck(Exception):
    """A property whose `where` allows no input: it would hold whatever the policy decides, so
    the runner reports it as an error (here so that the runner can catch it without importing
    the analysis the property checks use)."""
