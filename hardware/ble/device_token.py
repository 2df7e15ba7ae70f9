"""Opaque device tokens: a keyed hash of a BLE address, so the address never leaves the driver.

HMAC-SHA-256 with a random 32-byte salt drawn once per process: the same address gives the same
token for the life of the agent (so RSSI updates of one beacon can be smoothed together), and a
token cannot be turned back into an address, compared across stores, or across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_SALT = secrets.token_bytes(32)
TOKEN_HEX_CHARS = 16  # 64 bits: collisions among the devices one store hears are negligible


def device_token(address: str) -> str:
    """The opaque token for ``address`` (case-insensitive) in this process."""
    digest = hmac.new(_SALT, address.upper().encode("ascii", "replace"), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_HEX_CHARS]
