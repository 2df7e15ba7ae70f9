"""Eddystone-URL's compressed URL: a scheme prefix byte, then text with expansion codes.

Theory of operation
-------------------
From google/eddystone ``eddystone-url/README.md``: byte 0 of the encoded URL is the scheme
prefix (0 ``http://www.``, 1 ``https://www.``, 2 ``http://``, 3 ``https://``); the rest are
printable US-ASCII characters (0x21..0x7E) and the expansion codes 0x00..0x0D (``.com/``,
``.org/``, ... then the same top-level domains without the slash). Codes 0x0E..0x20 and
0x7F..0xFF are reserved, so a URL holding one is refused (BAD_URL_CODE), never guessed at; so
is a scheme byte above 3 (BAD_URL_SCHEME). At most 17 encoded bytes follow the scheme byte.

``encode_url`` is the inverse, used by tests and the simulated beacons: it picks the longest
matching scheme and, scanning left to right, replaces the first expansion that matches.
"""

from __future__ import annotations

from typing import Final

from edge_agent.presence.frames.refusal import FrameKind, Refusal, RefusalReason

SCHEMES: Final = ("http://www.", "https://www.", "http://", "https://")
EXPANSIONS: Final = (
    ".com/",
    ".org/",
    ".edu/",
    ".net/",
    ".info/",
    ".biz/",
    ".gov/",
    ".com",
    ".org",
    ".edu",
    ".net",
    ".info",
    ".biz",
    ".gov",
)
MAX_ENCODED_BYTES: Final = 17
_FIRST_PRINTABLE: Final = 0x21
_LAST_PRINTABLE: Final = 0x7E


def decode_url(data: bytes) -> str | Refusal:
    """The URL in ``data`` (scheme byte first), or a refusal naming the bad byte."""
    if not data:
        return Refusal(FrameKind.EDDYSTONE_URL, RefusalReason.TRUNCATED, "no URL scheme byte")
    if len(data) - 1 > MAX_ENCODED_BYTES:
        return Refusal(
            FrameKind.EDDYSTONE_URL,
            RefusalReason.OVERSIZED,
            f"{len(data) - 1} encoded URL bytes, at most {MAX_ENCODED_BYTES}",
        )
    if data[0] >= len(SCHEMES):
        return Refusal(
            FrameKind.EDDYSTONE_URL, RefusalReason.BAD_URL_SCHEME, f"scheme {data[0]:#04x}"
        )
    parts = [SCHEMES[data[0]]]
    for offset, code in enumerate(data[1:], start=1):
        if code < len(EXPANSIONS):
            parts.append(EXPANSIONS[code])
        elif _FIRST_PRINTABLE <= code <= _LAST_PRINTABLE:
            parts.append(chr(code))
        else:
            return Refusal(
                FrameKind.EDDYSTONE_URL,
                RefusalReason.BAD_URL_CODE,
                f"reserved code {code:#04x} at byte {offset}",
            )
    return "".join(parts)


def encode_url(url: str) -> bytes:
    """The compressed form of ``url``; ValueError if it has no known scheme or a bad character.

    Raises rather than refusing: it encodes our own configuration and test data, not input.
    """
    scheme = max(
        (i for i, prefix in enumerate(SCHEMES) if url.startswith(prefix)),
        key=lambda i: len(SCHEMES[i]),
        default=None,
    )
    if scheme is None:
        raise ValueError(f"{url!r}: not http:// or https://")
    out = bytearray((scheme,))
    rest = url[len(SCHEMES[scheme]) :]
    while rest:
        code = next((i for i, text in enumerate(EXPANSIONS) if rest.startswith(text)), None)
        if code is not None:
            out.append(code)
            rest = rest[len(EXPANSIONS[code]) :]
            continue
        char = ord(rest[0])
        if not _FIRST_PRINTABLE <= char <= _LAST_PRINTABLE:
            raise ValueError(f"{url!r}: {rest[0]!r} cannot be sent in Eddystone-URL")
        out.append(char)
        rest = rest[1:]
    if len(out) - 1 > MAX_ENCODED_BYTES:
        raise ValueError(f"{url!r}: {len(out) - 1} encoded bytes, at most {MAX_ENCODED_BYTES}")
    return bytes(out)
