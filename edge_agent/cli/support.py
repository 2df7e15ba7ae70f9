"""What every `edge-agent` command module shares (kept apart to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_agent.fields import FieldError, check


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit status 2."""


def field_arg(kind: object, name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` checking the argument against a shared field definition.

    It raises UsageError, which argparse lets through (it catches only ValueError and
    TypeError), so ``main`` prints the refusal as its usual one line, exit 2."""

    def convert(text: str) -> Any:
        try:
            return check(kind, text, name=name)
        except FieldError as exc:
            raise UsageError(str(exc)) from None

    return convert
