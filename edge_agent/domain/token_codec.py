"""The byte layout and text form of a signed coupon token. Pure: no I/O, no keys.

Theory of operation
-------------------
A receipt QR carries ``SS1:`` followed by the token's bytes in base45 (RFC 9285). Base45 uses
exactly the 45 characters of QR *alphanumeric* mode (digits, capitals, space and ``$%*+-./:``),
so the QR encoder packs 5.5 bits per character instead of 8: a 95-byte token fits a version 6
QR at error correction M (154 alphanumeric characters). The prefix holds a ``:``, which no typed
code can contain, so a token is told from a typed code by its first four characters.

Version 1 layout (integers big-endian)::

    off  len  field
      0    1  version = 1
      1    1  flags: bit 0 = bound to a member; every other bit must be 0
      2    4  key id: the first 4 bytes of SHA-256 of the signer's raw Ed25519 public key
      6    4  issued_at, UTC epoch seconds (uint32: good until 2106)
     10    4  expires_at, UTC epoch seconds
     14    4  campaign ref: the first 4 bytes of SHA-256(domain || campaign id)
     18    4  member binding (present only when bit 0 is set), see ``member_binding``
      .    1  code length n, 1..24 characters of [0-9A-Z]
      .    k  the code as a base-36 integer in the fewest bytes that hold any n characters
      .   64  Ed25519 signature over SIGNING_CONTEXT || every byte before it

Why these choices: the issuing store is not written in the token: the key id names the key,
and the key registry says whose key it is, so a token cannot claim one store and be signed by
another. The campaign is a 4-byte reference, not its id: ids are free text (``receipt-at-risk``
would cost 16 bytes and push the QR past version 6); a verifier that lacks the campaign cannot
honour the coupon anyway, and one that has it finds it by recomputing the reference.

Decoding is total and canonical: every string maps to a ``Layout`` or a ``Fault`` value, never
an exception, and only one text (up to letter case, see ``parse``) decodes to given bytes, so a
flipped bit can never yield another valid token for the same signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "SS1:"
VERSION = 1
SIGNATURE_BYTES = 64
KEY_ID_BYTES = 4
REF_BYTES = 4
MAX_CODE_CHARS = 24
FLAG_BOUND = 0x01
SIGNING_CONTEXT = b"storeside/coupon-token\x00"
_BINDING_CONTEXT = b"storeside/member-binding/v1\x00"
_CAMPAIGN_CONTEXT = b"storeside/campaign/v1\x00"
_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = {ch: i for i, ch in enumerate(_B45)}
_CODE_RE = re.compile(r"[0-9A-Z]{1,24}")
_HEADER = 1 + 1 + KEY_ID_BYTES + 4 + 4 + REF_BYTES  # up to the optional binding
UINT32_MAX = 2**32 - 1


class Fault(StrEnum):
    """Why a string is not a readable token (before any key is consulted)."""

    NOT_A_TOKEN = "not_a_token"  # noqa: S105 - no SS1: prefix: a typed code, or anything else
    BAD_ENCODING = "bad_encoding"  # a character or group outside base45
    TRUNCATED = "truncated"  # fewer bytes than its own fields say
    UNKNOWN_VERSION = "unknown_version"  # written by a newer format
    MALFORMED = "malformed"  # unknown flags, bad code length or value, trailing bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Unreadable:
    fault: Fault
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """The fields of a version 1 token, as written; nothing here is verified yet."""

    key_id: str  # 8 lower-case hex characters
    issued_at: int  # epoch seconds
    expires_at: int
    campaign_ref: bytes  # REF_BYTES
    member_binding: bytes | None  # 4 bytes, or None for an anonymous coupon
    code: str
    signed: bytes = b""  # SIGNING_CONTEXT + the bytes the signature covers
    signature: bytes = b""


def key_id_of(raw_public_key: bytes) -> str:
    """The short fingerprint that names a public key (in tokens, registries and the CLI)."""
    return hashlib.sha256(raw_public_key).digest()[:KEY_ID_BYTES].hex()


def campaign_ref(campaign_id: str) -> bytes:
    return hashlib.sha256(_CAMPAIGN_CONTEXT + campaign_id.encode()).digest()[:REF_BYTES]


def member_binding(code: str, member_id: str) -> bytes:
    """4 bytes tying a coupon to a member without printing the member id.

    Salted by the code, so one member's coupons carry unrelated bindings (receipts cannot be
    grouped by member). It is NOT secret: member ids are short, so anyone holding a receipt and
    able to enumerate ids recovers the id with a few million hashes. What it gives is that the
    id is not readable on paper, and that a different member passes only with chance 2**-32.
    """
    material = _BINDING_CONTEXT + code.encode() + b"\x00" + member_id.encode()
    return hashlib.sha256(material).digest()[:4]


def code_bytes(length: int) -> int:
    """Bytes that hold any base-36 number of ``length`` digits."""
    return (int(36**length - 1).bit_length() + 7) // 8


def body(layout: Layout) -> bytes:
    """The bytes a signature covers (without the signing context). Raises ValueError for
    fields the format cannot carry."""
    if not _CODE_RE.fullmatch(layout.code):
        raise ValueError(f"a token code is 1-{MAX_CODE_CHARS} of [0-9A-Z], got {layout.code!r}")
    for name, value in (("issued_at", layout.issued_at), ("expires_at", layout.expires_at)):
        if not 0 <= value <= UINT32_MAX:
            raise ValueError(f"{name} {value} is outside the token's uint32 range")
    if len(layout.campaign_ref) != REF_BYTES or len(bytes.fromhex(layout.key_id)) != 4:
        raise ValueError("campaign ref and key id are 4 bytes each")
    binding = layout.member_binding
    if binding is not None and len(binding) != 4:
        raise ValueError("a member binding is 4 bytes")
    n = len(layout.code)
    return b"".join(
        (
            bytes((VERSION, FLAG_BOUND if binding is not None else 0)),
            bytes.fromhex(layout.key_id),
            layout.issued_at.to_bytes(4, "big"),
            layout.expires_at.to_bytes(4, "big"),
            layout.campaign_ref,
            binding or b"",
            bytes((n,)),
            int(layout.code, 36).to_bytes(code_bytes(n), "big"),
        )
    )


def to_text(token: bytes) -> str:
    return PREFIX + b45encode(token)


def b45encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        c, n = divmod(n, 45 * 45)
        d, e = divmod(n, 45)
        out += (_B45[e], _B45[d], _B45[c])
    if len(data) % 2:
        d, e = divmod(data[-1], 45)
        out += (_B45[e], _B45[d])
    return "".join(out)


def b45decode(text: str) -> bytes | Unreadable:
    """Strict base45: rejects values over 65535 (or 255 for a final pair) and a lone character,
    so each byte string has exactly one encoding."""
    values: list[int] = []
    for ch in text:
        v = _B45_VALUE.get(ch)
        if v is None:
            return Unreadable(fault=Fault.BAD_ENCODING, detail=f"character {ch!r} is not base45")
        values.append(v)
    if len(values) % 3 == 1:
        return Unreadable(fault=Fault.BAD_ENCODING, detail="a lone base45 character at the end")
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i : i + 3]
        if len(group) == 3:
            n = group[0] + group[1] * 45 + group[2] * 45 * 45
            if n > 0xFFFF:
                return Unreadable(fault=Fault.BAD_ENCODING, detail="a base45 group over 65535")
            out += n.to_bytes(2, "big")
        else:
            n = group[0] + group[1] * 45
            if n > 0xFF:
                return Unreadable(fault=Fault.BAD_ENCODING, detail="a base45 pair over 255")
            out.append(n)
    return bytes(out)


def looks_like_token(text: str) -> bool:
    return text.strip()[: len(PREFIX)].upper() == PREFIX


def parse(text: str) -> Layout | Unreadable:
    """Decode ``text`` (as scanned) into its fields; never raises.

    Letter case is ignored: base45 has no lower case, and a keyboard-wedge scanner with caps
    lock on sends the QR's text in lower case. Surrounding whitespace is dropped: a base45 text
    never ends in a space (a final group's last character is at most 'W'), so no token loses
    anything by it.
    """
    text = text.strip()
    if text[: len(PREFIX)].upper() != PREFIX:
        return Unreadable(fault=Fault.NOT_A_TOKEN, detail="no SS1: prefix")
    if not text.isascii():
        # Checked before upper-casing: str.upper maps some non-ASCII letters onto capitals.
        return Unreadable(fault=Fault.BAD_ENCODING, detail="a character outside ASCII")
    text = text.upper()
    data = b45decode(text[len(PREFIX) :])
    if isinstance(data, Unreadable):
        return data
    if not data:
        return Unreadable(fault=Fault.TRUNCATED, detail="nothing after the prefix")
    if data[0] != VERSION:
        return Unreadable(fault=Fault.UNKNOWN_VERSION, detail=f"token version {data[0]}")
    return _fields(data)


def _fields(data: bytes) -> Layout | Unreadable:
    if len(data) < _HEADER + 1:
        return _short(len(data))
    flags = data[1]
    if flags & ~FLAG_BOUND:
        return Unreadable(fault=Fault.MALFORMED, detail=f"unknown flags {flags:#04x}")
    at = _HEADER
    binding: bytes | None = None
    if flags & FLAG_BOUND:
        binding = data[at : at + 4]
        at += 4
    if len(data) < at + 1:
        return _short(len(data))
    n = data[at]
    if not 1 <= n <= MAX_CODE_CHARS:
        return Unreadable(fault=Fault.MALFORMED, detail=f"code length {n}")
    at += 1
    k = code_bytes(n)
    end = at + k + SIGNATURE_BYTES
    if len(data) < end:
        return _short(len(data))
    if len(data) > end:
        return Unreadable(fault=Fault.MALFORMED, detail=f"{len(data) - end} trailing bytes")
    value = int.from_bytes(data[at : at + k], "big")
    if value >= 36**n:
        return Unreadable(fault=Fault.MALFORMED, detail="code value out of range")
    return Layout(
        key_id=data[2:6].hex(),
        issued_at=int.from_bytes(data[6:10], "big"),
        expires_at=int.from_bytes(data[10:14], "big"),
        campaign_ref=data[14:18],
        member_binding=binding,
        code=_base36(value, n),
        signed=SIGNING_CONTEXT + data[: at + k],
        signature=data[at + k :],
    )


def _short(got: int) -> Unreadable:
    return Unreadable(fault=Fault.TRUNCATED, detail=f"only {got} bytes")


def _base36(value: int, length: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(length):
        value, d = divmod(value, 36)
        out.append(digits[d])
    return "".join(reversed(out))


def public_key_from_text(text: str) -> bytes | None:
    """A raw 32-byte Ed25519 public key from its text form (64 hex digits, or base64 / base64url
    with or without padding, as ``edge-agent keys show`` prints it); None if it is neither."""
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    if not re.fullmatch(r"[A-Za-z0-9+/_-]{43}=?", text):
        return None
    padded = text.rstrip("=") + "="
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def public_key_text(raw: bytes) -> str:
    """The text form HQ registers: unpadded base64url of the 32 raw bytes."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
