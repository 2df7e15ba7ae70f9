"""Literal codes: brand-supplied imports and generic codes chosen by a person (``HOLIMAN100``).

They may have any shape, so they are only normalised (case, spaces, dashes) and checked for
being typeable. One shape is refused: a literal that parses as a well-formed minted code. Such
a string lies inside some minter's namespace, and that minter (possibly a store, offline) could
draw the same string later; refusing it keeps "disjoint namespaces" a real guarantee.
"""

from __future__ import annotations

import re

from edge_agent.domain.code_format import CodeFormat, normalise, parse

MIN_LENGTH = 3
MAX_LENGTH = 40
_TYPEABLE = re.compile(r"[A-Z0-9]+")


def literal_problem(code: str, fmt: CodeFormat) -> str | None:
    """Why the normalised ``code`` cannot be stored as a literal, or None if it can."""
    if not code:
        return "empty code"
    if not _TYPEABLE.fullmatch(code):
        return "only letters and digits can be typed at a till"
    if not MIN_LENGTH <= len(code) <= MAX_LENGTH:
        return f"length {len(code)} is outside {MIN_LENGTH}..{MAX_LENGTH}"
    if isinstance(parse(code, fmt), str):
        return "it has the shape of a minted code (a minter's namespace could draw it)"
    return None


def normalise_literal(raw: str) -> str:
    return normalise(raw.strip())
