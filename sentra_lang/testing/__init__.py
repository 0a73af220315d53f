"""sentra-lang testing."""
