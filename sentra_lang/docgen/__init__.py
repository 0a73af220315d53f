"""sentra-lang docgen."""
