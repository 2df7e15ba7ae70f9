"""Coupon code format: alphabet, check character, normalisation and parsing.

Theory of operation
-------------------
A code reads PREFIX + NAMESPACE + RANDOM + CHECK, e.g. SS + K7 + HQ2P9X + M.

* The alphabet has 31 symbols: digits and capitals without the confusable 0/O, 1/I/L.
  31 is prime, which is what makes the check character strong (below).
* ``NAMESPACE`` is a fixed-width block assigned by HQ to each minter (HQ itself, and every
  store that mints receipt coupons offline). Two minters never share a namespace, and each
  minter keeps its own codes unique, so no two codes anywhere can collide without coordination.
* ``RANDOM`` is cryptographically random (``os.urandom``), uniform over the alphabet.
* ``CHECK`` makes the weighted sum ``sum(w_i * v_i) mod 31`` over the body zero, with weights
  1, 2, 3, ... Because 31 is prime and every weight is in 1..30, a single mistyped character
  changes the sum by ``w * delta != 0 (mod 31)`` and a swap of two neighbours changes it by
  ``(w_i - w_{i+1}) * (a - b) = -(a - b) != 0``: both are always caught before any lookup.

Input is normalised (upper case; spaces, dashes, dots and underscores dropped) so that what a
cashier types and what a scanner sends compare equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BASE = len(ALPHABET)  # 31, prime
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_CONFUSABLE = {"0": "O/0", "O": "O/0", "1": "1/I/L", "I": "1/I/L", "L": "1/I/L"}
_SEPARATORS = str.maketrans("", "", " -_.\t\r\n")
# Rejection sampling keeps the alphabet uniform: 248 = 8 * 31 byte values map evenly,
# the last 8 byte values are dropped.
_ACCEPTED_BYTES = 8 * BASE
_BYTE_TO_SYMBOL = bytes(ord(ALPHABET[b % BASE]) for b in range(_ACCEPTED_BYTES)) + bytes(
    256 - _ACCEPTED_BYTES
)
_REJECTED_BYTES = bytes(range(_ACCEPTED_BYTES, 256))
MAX_BODY = BASE - 1  # weights must stay in 1..30


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeFormat:
    """How codes look for one brand. ``prefix`` may use any capitals and digits."""

    prefix: str
    namespace_length: int = 2
    random_length: int = 6

    def __post_init__(self) -> None:
        if not self.prefix.isalnum() or self.prefix.upper() != self.prefix:
            raise ValueError(f"prefix must be capitals and digits, got {self.prefix!r}")
        if self.namespace_length < 0 or self.random_length < 4:
            raise ValueError("namespace_length >= 0 and random_length >= 4 are required")
        if self.body_length > MAX_BODY:
            raise ValueError(f"body longer than {MAX_BODY} characters defeats the check")

    @property
    def body_length(self) -> int:
        return self.namespace_length + self.random_length + 1

    @property
    def length(self) -> int:
        return len(self.prefix) + self.body_length

    def namespace_count(self) -> int:
        return int(BASE**self.namespace_length)


@dataclass(frozen=True, slots=True)
class Malformed:
    """Why a string cannot be a code; ``hint`` is written for the cashier."""

    hint: str
    normalised: str


def normalise(raw: str) -> str:
    return raw.translate(_SEPARATORS).upper()


def check_symbol(payload: str) -> str:
    """The check character for ``payload`` (namespace + random), all alphabet symbols."""
    total = 0
    for weight, ch in enumerate(payload, start=1):
        total += weight * _VALUE[ch]
    last_weight = len(payload) + 1
    # Solve total + last_weight * c == 0 (mod 31); pow(..., -1, 31) is the modular inverse.
    value = (-total * pow(last_weight, -1, BASE)) % BASE
    return ALPHABET[value]


def body_is_consistent(body: str) -> bool:
    total = 0
    for weight, ch in enumerate(body, start=1):
        total += weight * _VALUE[ch]
    return total % BASE == 0


def parse(raw: str, fmt: CodeFormat) -> str | Malformed:
    """Return the canonical code, or why ``raw`` cannot be one (never raises on input)."""
    code = normalise(raw)
    if not code:
        return Malformed("No code was entered.", code)
    if not code.startswith(fmt.prefix):
        return Malformed(f"Codes start with {fmt.prefix}; this one does not.", code)
    body = code[len(fmt.prefix) :]
    for ch in body:
        if ch not in _VALUE:
            if ch in _CONFUSABLE:
                return Malformed(
                    f"Codes never contain {_CONFUSABLE[ch]}; check the character {ch!r}.", code
                )
            return Malformed(f"{ch!r} is not a character used in codes.", code)
    if len(body) != fmt.body_length:
        short = len(body) < fmt.body_length
        return Malformed(
            f"Codes have {fmt.length} characters; this one has {len(code)} "
            f"({'a character is missing' if short else 'a character too many'}).",
            code,
        )
    if not body_is_consistent(body):
        return Malformed(
            "The check character does not match: one character is mistyped "
            "or two neighbours are swapped.",
            code,
        )
    return code


def namespace_string(index: int, fmt: CodeFormat) -> str:
    """Minter number ``index`` (0-based) as its namespace block."""
    if not 0 <= index < fmt.namespace_count():
        raise ValueError(f"namespace {index} out of range 0..{fmt.namespace_count() - 1}")
    symbols = []
    for _ in range(fmt.namespace_length):
        index, rem = divmod(index, BASE)
        symbols.append(ALPHABET[rem])
    return "".join(reversed(symbols))


def random_symbols(count: int) -> str:
    """``count`` uniform random alphabet symbols from the OS CSPRNG."""
    out = b""
    while len(out) < count:
        need = count - len(out)
        # Ask for ~3.5% extra to cover the rejected byte values in one go.
        chunk = os.urandom(need + need // 28 + 16)
        out += chunk.translate(_BYTE_TO_SYMBOL, _REJECTED_BYTES)
    return out[:count].decode("ascii")


def make_code(fmt: CodeFormat, namespace: str, random_part: str) -> str:
    payload = namespace + random_part
    return fmt.prefix + payload + check_symbol(payload)


def new_code(fmt: CodeFormat, namespace: str) -> str:
    """One fresh code; the caller enforces uniqueness within its namespace."""
    if len(namespace) != fmt.namespace_length:
        raise ValueError("namespace has the wrong width for this format")
    return make_code(fmt, namespace, random_symbols(fmt.random_length))


def display(code: str, fmt: CodeFormat) -> str:
    """Grouped for printing and reading aloud: ``SS-K7HQ-2P9XM``."""
    body = code[len(fmt.prefix) :]
    mid = len(body) // 2
    return f"{fmt.prefix}-{body[:mid]}-{body[mid:]}"
