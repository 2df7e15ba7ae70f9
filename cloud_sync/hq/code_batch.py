"""Vectorised code generation for bulk minting (numpy; HQ only, never imported by the agent).

Theory of operation
-------------------
The random part of a code (``random_length`` symbols of the 31-symbol alphabet) is handled as
one integer ``value`` in ``0 .. 31**random_length - 1``, its symbols being the base-31 digits.
Because the alphabet is in ASCII order, codes that share prefix and namespace sort exactly as
their values do, so sorting int64s is sorting codes (and far cheaper).

1. ``random_symbols``: bytes from ``os.urandom``; bytes 248..255 are rejected and the rest taken
   ``mod 31`` (248 = 8 * 31), so every symbol is exactly uniform. Same rule as
   ``code_format.random_symbols``.
2. ``draw_unique``: draw values, sort, drop neighbours that are equal (a sort instead of
   ``np.unique``: PERFORMANCE.md measured 0.14 s against 12 s on 10M), drop values already
   ``taken`` in the database, and draw exactly the shortfall again until ``count`` distinct
   values remain. Never drawing extra and trimming keeps the result a uniform random set
   (trimming a sorted array would bias it towards small values).
3. ``encode``: values back to symbols, the check character computed for all rows at once
   (weights 1..n, mod 31, identical to ``code_format.check_symbol``), and fixed-width ASCII rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.domain.code_format import ALPHABET, BASE, CodeFormat

Values = npt.NDArray[np.int64]
Symbols = npt.NDArray[np.uint8]

MAX_RANDOM_LENGTH = 12  # 31**12 < 2**63: the value of a random part fits an int64
_ACCEPTED_BYTES = 8 * BASE
_ALPHABET_BYTES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_INVALID = 255
_SYMBOL_OF_BYTE = np.full(256, _INVALID, dtype=np.uint8)
_SYMBOL_OF_BYTE[_ALPHABET_BYTES] = np.arange(BASE, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Draw:
    values: Values  # sorted, distinct, none of them taken
    duplicates: int  # draws discarded because the same value was drawn twice
    collisions: int  # draws discarded because the value was already taken


def space_size(random_length: int) -> int:
    _check_length(random_length)
    return int(BASE**random_length)


def random_symbols(count: int) -> Symbols:
    """``count`` uniform symbol values 0..30 from the OS CSPRNG."""
    out = np.empty(count, dtype=np.uint8)
    filled = 0
    while filled < count:
        need = count - filled
        # ~3.2% of bytes are rejected; ask for a little more than that in one go.
        raw = np.frombuffer(os.urandom(need + need // 28 + 64), dtype=np.uint8)
        accepted = raw[raw < _ACCEPTED_BYTES]
        take = min(len(accepted), need)
        np.remainder(accepted[:take], BASE, out=out[filled : filled + take])
        filled += take
    return out


def random_values(count: int, random_length: int) -> Values:
    """``count`` uniform values in ``0 .. 31**random_length - 1``."""
    _check_length(random_length)
    symbols = random_symbols(count * random_length).reshape(count, random_length)
    values = symbols[:, 0].astype(np.int64)
    for j in range(1, random_length):
        values *= BASE
        values += symbols[:, j]
    return values


def _distinct_sorted(values: Values) -> Values:
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _not_in(values: Values, taken: Values) -> npt.NDArray[np.bool_]:
    """Mask of ``values`` absent from the sorted array ``taken``."""
    if len(taken) == 0:
        return np.ones(len(values), dtype=bool)
    pos = np.searchsorted(taken, values)
    np.minimum(pos, len(taken) - 1, out=pos)
    return np.asarray(taken[pos] != values)


def draw_unique(count: int, random_length: int, taken: Values | None = None) -> Draw:
    """``count`` distinct random values, none in ``taken`` (sorted, distinct); see step 2."""
    taken = np.empty(0, dtype=np.int64) if taken is None else taken
    if count < 0 or count > space_size(random_length) - len(taken):
        raise ValueError(f"cannot draw {count} distinct values of {random_length} symbols")
    have = np.empty(0, dtype=np.int64)
    duplicates = collisions = 0
    while len(have) < count:
        fresh = random_values(count - len(have), random_length)
        merged = _distinct_sorted(np.concatenate([have, fresh]))
        duplicates += len(have) + len(fresh) - len(merged)
        free = _not_in(merged, taken)
        collisions += len(merged) - int(free.sum())
        have = merged[free]
    return Draw(values=have, duplicates=duplicates, collisions=collisions)


def random_permutation(count: int) -> npt.NDArray[np.intp]:
    """A uniform random permutation from OS randomness (argsort of random 64-bit keys)."""
    keys = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    return np.argsort(keys, kind="stable")


def values_to_symbols(values: Values, random_length: int) -> Symbols:
    """Base-31 digits of each value, most significant first: shape (n, random_length)."""
    out = np.empty((len(values), random_length), dtype=np.uint8)
    rest = values.copy()
    for j in range(random_length - 1, -1, -1):
        rest, digit = np.divmod(rest, BASE)
        out[:, j] = digit
    return out


def _symbol_values(text: str) -> list[int]:
    return [ALPHABET.index(ch) for ch in text]


def check_values(namespace: str, symbols: Symbols) -> Symbols:
    """Check symbol values for payloads ``namespace + symbols[i]``, as ``check_symbol`` does."""
    ns_len = len(namespace)
    total = np.full(
        len(symbols), sum(w * v for w, v in enumerate(_symbol_values(namespace), 1)), dtype=np.int32
    )
    for j in range(symbols.shape[1]):
        total += (ns_len + 1 + j) * symbols[:, j].astype(np.int32)
    last_weight = ns_len + symbols.shape[1] + 1
    # Solve total + last_weight * c == 0 (mod 31); numpy's % is non-negative for a positive base.
    check: Symbols = ((-total * pow(last_weight, -1, BASE)) % BASE).astype(np.uint8)
    return check


def encode(fmt: CodeFormat, namespace: str, values: Values) -> npt.NDArray[np.bytes_]:
    """Whole codes as fixed-width ASCII (``S{fmt.length}``), one per value, in value order."""
    if len(namespace) != fmt.namespace_length:
        raise ValueError("namespace has the wrong width for this format")
    symbols = values_to_symbols(values, fmt.random_length)
    rows = np.empty((len(values), fmt.length), dtype=np.uint8)
    head = (fmt.prefix + namespace).encode("ascii")
    rows[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    rows[:, len(head) : len(head) + fmt.random_length] = _ALPHABET_BYTES[symbols]
    rows[:, -1] = _ALPHABET_BYTES[check_values(namespace, symbols)]
    return rows.view(f"S{fmt.length}").ravel()


def to_strings(encoded: npt.NDArray[np.bytes_]) -> list[str]:
    return list(encoded.astype(f"U{encoded.dtype.itemsize}").tolist())


def decode(fmt: CodeFormat, namespace: str, concatenated: str) -> Values:
    """Sorted values of the minted codes in ``namespace`` found in ``concatenated``.

    ``concatenated`` is codes of exactly ``fmt.length`` characters joined without separator
    (SQLite's ``group_concat`` builds it without a Python object per code). Rows that are not
    well-formed codes of this namespace (e.g. a literal of the same length) are ignored.
    """
    if len(concatenated) % fmt.length:
        raise ValueError("concatenated codes must all have the format's length")
    head = (fmt.prefix + namespace).encode("ascii")
    raw = np.frombuffer(concatenated.encode("ascii", "replace"), dtype=np.uint8)
    rows = raw.reshape(len(raw) // fmt.length, fmt.length)
    ok = (rows[:, : len(head)] == np.frombuffer(head, dtype=np.uint8)).all(axis=1)
    symbols = _SYMBOL_OF_BYTE[rows[:, len(head) : len(head) + fmt.random_length]]
    ok &= (symbols != _INVALID).all(axis=1)
    ok &= _SYMBOL_OF_BYTE[rows[:, -1]] == check_values(namespace, symbols)
    symbols = symbols[ok]
    values = np.zeros(len(symbols), dtype=np.int64)
    for j in range(fmt.random_length):
        values *= BASE
        values += symbols[:, j]
    return _distinct_sorted(values)


def _check_length(random_length: int) -> None:
    if not 1 <= random_length <= MAX_RANDOM_LENGTH:
        raise ValueError(
            f"bulk minting supports random parts of 1..{MAX_RANDOM_LENGTH} symbols, "
            f"not {random_length}"
        )
