"""The member app's rotating identifier: the one definition the phone and the box share.

Theory of operation
-------------------
A consenting member's phone advertises an 8-byte identifier that changes every rotation
period, so a passer-by with a scanner sees a stream of unrelated values, while a Storeside box
holding the member's key (synced by HQ to the stores of consenting members only) can tell whose
it is. It follows Eddystone-EID's shape (google/eddystone ``eddystone-eid/eid-computation.md``:
a shared 128-bit identity key, a seconds counter, a rotation exponent K, a new identifier
every 2^K seconds, an 8-byte truncated output), with one change of primitive:

    counter = floor(unix_seconds / 2**K)
    id      = HMAC-SHA256(key, LABEL || K || counter as 8 bytes big-endian)[0:8]

* HMAC-SHA256 (RFC 2104, FIPS 198-1) in place of Eddystone's two AES-128 blocks: it is a PRF
  under a 16-byte key, it is in every phone's platform crypto (CryptoKit ``HMAC<SHA256>``,
  ``javax.crypto.Mac "HmacSHA256"``) and in Python's standard library, which this contract
  package is limited to. Truncating an HMAC to its leading 64 bits is allowed by NIST SP
  800-107r1 section 5.3.3 (and is what RFC 4226/6238 do down to 31 bits).
* The counter is Unix time divided by the period, as TOTP (RFC 6238 section 4) does with its
  time step, rather than Eddystone's per-beacon counter with a registered offset: a phone's
  clock is network-synchronised, so the box needs no per-member clock offset, and the skew
  window absorbs the rest. The 8-byte big-endian counter block is RFC 4226's.
* LABEL (domain separation) and K are in the message so the same key never yields the same
  identifier under another scheme version or period.

The advertisement is service data (Storeside holds no SIG-assigned 16-bit UUID) under the
128-bit ``MEMBER_SERVICE_UUID``; its payload is ``FRAME_BYTES`` long::

    0         1                        2..9
    version   tx power at 1 m          rotating id
    (0x01)    (int8 dBm, 0x7F unknown) (8 bytes)

With the flags AD structure (3 bytes), the service-data structure (1 length + 1 type 0x21 +
16 UUID + 10 payload = 28 bytes) fills a legacy 31-byte advertisement with none to spare.
``docs/rotating-identifier.md`` is the developers' description; ``reference/member_app`` is
the reference generator; ``tests/presence/vectors/rotating_id.json`` holds test vectors.
"""

from __future__ import annotations

import hmac
import struct
from datetime import UTC, datetime
from typing import Final

MEMBER_SERVICE_UUID: Final = "3df32698-5280-484e-a16c-385bc4902b45"
FRAME_VERSION: Final = 0x01
FRAME_BYTES: Final = 10
TX_POWER_UNKNOWN: Final = 0x7F
KEY_BYTES: Final = 16
ID_BYTES: Final = 8
LABEL: Final = b"storeside/rotating-id/v1"
DEFAULT_EXPONENT: Final = 8  # 2^8 = 256 s, about 4.3 minutes
MIN_EXPONENT: Final = 0
MAX_EXPONENT: Final = 15  # Eddystone-EID's range: up to about 9 hours
_COUNTER: Final = struct.Struct(">BQ")
_FRAME: Final = struct.Struct(">Bb8s")


def check_exponent(exponent: int) -> None:
    if not MIN_EXPONENT <= exponent <= MAX_EXPONENT:
        raise ValueError(f"rotation exponent {exponent}: not in {MIN_EXPONENT}..{MAX_EXPONENT}")


def counter_at(at: datetime, exponent: int = DEFAULT_EXPONENT) -> int:
    """The rotation counter for the instant ``at`` (an aware datetime)."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no instant; give a timezone")
    check_exponent(exponent)
    return int(at.timestamp()) >> exponent


def period_start(counter: int, exponent: int = DEFAULT_EXPONENT) -> datetime:
    """The first instant of ``counter``'s period."""
    return datetime.fromtimestamp(counter << exponent, tz=UTC)


def rotating_id(key: bytes, counter: int, exponent: int = DEFAULT_EXPONENT) -> bytes:
    """The 8-byte identifier ``key`` advertises during ``counter``'s period."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a member key is {KEY_BYTES} bytes, not {len(key)}")
    check_exponent(exponent)
    if not 0 <= counter < 2**64:
        raise ValueError(f"counter {counter}: not an unsigned 64-bit value")
    message = LABEL + _COUNTER.pack(exponent, counter)
    return hmac.digest(key, message, "sha256")[:ID_BYTES]


def encode_frame(identifier: bytes, tx_power: int = TX_POWER_UNKNOWN) -> bytes:
    """The service-data payload (under ``MEMBER_SERVICE_UUID``) that carries ``identifier``."""
    if len(identifier) != ID_BYTES:
        raise ValueError(f"a rotating id is {ID_BYTES} bytes, not {len(identifier)}")
    if not -128 <= tx_power <= 127:
        raise ValueError(f"tx power {tx_power}: not a signed byte")
    return _FRAME.pack(FRAME_VERSION, tx_power, identifier)


def advertisement_bytes(payload: bytes) -> bytes:
    """The whole legacy advertising data for ``payload``: flags, then 128-bit service data.

    Flags 0x06 (LE General Discoverable, BR/EDR not supported); AD type 0x21 is "Service Data
    - 128-bit UUID" (Bluetooth Core Specification Supplement, part A, 1.11), UUID little-endian.
    """
    uuid_le = bytes.fromhex(MEMBER_SERVICE_UUID.replace("-", ""))[::-1]
    service = bytes((0x21,)) + uuid_le + payload
    return bytes((0x02, 0x01, 0x06, len(service))) + service
