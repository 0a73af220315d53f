"""sentra-lang: a small declarative policy language for gating AI agents' actions."""

__version__ = "0.1.0"
