"""What every `edge-agent` command module shares (kept apart to avoid import cycles)."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit status 2."""
