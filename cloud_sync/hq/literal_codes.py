"""Literal codes: brand-supplied imports and generic codes chosen by a person (``HOLIMAN100``).

They may have any shape, so they are only normalised (case, spaces, dashes) and checked for
being typeable. Two shapes are refused:

* A literal that parses as a well-formed minted code. Such a string lies inside some minter's
  namespace, and that minter (possibly a store, offline) could draw the same string later;
  refusing it keeps "disjoint namespaces" a real guarantee.
* A literal one mistype away from a code HQ already holds (issue 6). The store looks a string
  up verbatim when its check character fails, so if ``SSK7HQ2P9XN`` (a typo of the minted
  ``SSK7HQ2P9XM``) were a literal, the typo would redeem the literal. "One mistype" is one
  substitution, one swap of neighbours, one insertion or one deletion (Damerau distance 1),
  over the characters a normalised literal can hold. Nothing is scanned: against minted codes,
  the literal's well-formed neighbours are generated (``mintable_neighbours``, a few a
  character: the check character leaves one choice per position) and looked up by primary key;
  against other literals, its deletion keys are looked up in ``literal_keys`` (``NearIndex``
  explains why one edit always shares a key). Minting does the reverse and redraws codes next
  to a literal (``minting.py``). ``neighbours`` is the plain definition the tests check against.
"""

from __future__ import annotations

import re
import string

from edge_agent.domain.code_format import ALPHABET, BASE, CodeFormat, normalise, parse

MIN_LENGTH = 3
MAX_LENGTH = 40
# What survives ``normalise`` and ``_TYPEABLE``: the space a typo of a literal lives in.
TYPED = string.ascii_uppercase + string.digits
_TYPEABLE = re.compile(r"[A-Z0-9]+")
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def literal_problem(code: str, fmt: CodeFormat) -> str | None:
    """Why the normalised ``code`` cannot be stored as a literal, or None if it can.

    This is the shape check only; ``CentralStore.near_codes`` checks it against known codes.
    """
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


def neighbours(code: str) -> set[str]:
    """Every string one substitution, adjacent swap, insertion or deletion from ``code``."""
    out: set[str] = set()
    n = len(code)
    for i in range(n):
        head, tail = code[:i], code[i + 1 :]
        out.add(head + tail)
        if i + 1 < n and code[i] != code[i + 1]:
            out.add(head + code[i + 1] + code[i] + code[i + 2 :])
        out.update(head + ch + tail for ch in TYPED if ch != code[i])
    for i in range(n + 1):
        head, tail = code[:i], code[i:]
        out.update(head + ch + tail for ch in TYPED)
    out.discard(code)
    return out


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one substitution, swap, insertion or deletion."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    return a[i + 1 :] == b[i + 1 :] or (
        i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    )


class NearIndex:
    """Strings added so far, found again by any string one edit away, in O(length) lookups.

    Each string is filed under itself and its deletions: two strings one edit apart always
    share one of those keys (a substitution or swap at i: both minus their i-th character;
    an insertion: the longer minus it is the shorter). Candidates are then confirmed.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, list[str]] = {}

    def add(self, code: str) -> None:
        for key in deletion_keys(code):
            self._by_key.setdefault(key, []).append(code)

    def near(self, code: str) -> list[str]:
        found = {c for key in deletion_keys(code) for c in self._by_key.get(key, ())}
        return sorted(c for c in found if one_edit_apart(c, code))


def mintable_neighbours(literal: str, fmt: CodeFormat, head: str) -> list[str]:
    """The neighbours of ``literal`` that are well-formed codes beginning with ``head``.

    ``head`` is prefix (+ namespace): what minting there must not draw, or what a literal must
    not be next to. Only literals within one character of the code length can have any. A
    candidate is made per position, not per character: inside the body, the one character that
    satisfies the check sum is solved for (as ``check_symbol`` does); inside the prefix, only
    the prefix's own character can fit. So a literal costs about 3 candidates a character,
    not 72 (``neighbours``), and each is then parsed.
    """
    n, p, prefix = len(literal), len(fmt.prefix), fmt.prefix
    if abs(n - fmt.length) > 1:
        return []
    out: set[str] = set()
    if n == fmt.length + 1:
        out.update(literal[:i] + literal[i + 1 :] for i in range(n))
    elif n == fmt.length:
        out.update(
            literal[:i] + literal[i + 1] + literal[i] + literal[i + 2 :] for i in range(n - 1)
        )
        out.update(literal[:i] + prefix[i] + literal[i + 1 :] for i in range(p))
        if literal.startswith(prefix):
            body = literal[p:]
            for j in range(len(body)):
                x = _solve(body[:j], body[j + 1 :])
                if x is not None:
                    out.add(prefix + body[:j] + x + body[j + 1 :])
    else:
        out.update(literal[:i] + prefix[i] + literal[i:] for i in range(p))
        if literal.startswith(prefix):
            body = literal[p:]
            for j in range(len(body) + 1):
                x = _solve(body[:j], body[j:])
                if x is not None:
                    out.add(prefix + body[:j] + x + body[j:])
    return sorted(c for c in out if c != literal and c.startswith(head) and parse(c, fmt) == c)


def _solve(before: str, after: str) -> str | None:
    """The symbol x making ``before + x + after`` check-consistent, if all else is alphabet."""
    if not all(ch in _VALUE for ch in before) or not all(ch in _VALUE for ch in after):
        return None
    k = len(before) + 1
    total = sum(w * _VALUE[ch] for w, ch in enumerate(before, 1))
    total += sum(w * _VALUE[ch] for w, ch in enumerate(after, k + 1))
    if k >= BASE:  # weights wrap past 30: no such body is a valid code anyway
        return None
    return ALPHABET[(-total * pow(k, -1, BASE)) % BASE]


def deletion_keys(code: str) -> set[str]:
    """``code`` and each one-character deletion of it (see ``NearIndex``)."""
    return {code} | {code[:i] + code[i + 1 :] for i in range(len(code))}
