"""pytest plugin collecting sentra scenario suites (being written)."""
