"""sentra-lang server."""
