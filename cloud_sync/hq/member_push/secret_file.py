"""The webhook's shared secret on disk: one line of text only HQ's user may read.

The secret is the file's text without its line ending, as UTF-8 bytes: the same bytes the
receiver's developers paste into their configuration. ``create`` writes 32 random bytes as 64
hex digits (mode 0600 from the first instant, never over an existing file); ``load`` refuses a
file group or others may read (as HQ's signing key, ``hq_key_file.py``), one shorter than
``MIN_BYTES``, and one of several lines. Neither ever puts the secret in an error message.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.hq_key_file import read_private, write_private

MIN_BYTES: Final = 16  # 128 bits; ``create`` makes 256


def create(path: Path) -> None:
    """A new secret in ``path`` (mode 0600); InputError if a file is there."""
    text = secrets.token_hex(32) + "\n"
    write_private(
        path, text.encode("ascii"), exists=f"{path} exists; refusing to replace the secret"
    )


def load(path: Path) -> bytes:
    """The secret in ``path``; InputError naming what is wrong with the file (not its text)."""
    data = read_private(path, missing=f"{path}: no webhook secret (storeside-hq push secret)")
    secret = data.removesuffix(b"\n").removesuffix(b"\r")
    if b"\n" in secret or b"\r" in secret:
        raise InputError(f"{path}: the secret is one line")
    if len(secret) < MIN_BYTES:
        raise InputError(f"{path}: a secret of {len(secret)} bytes; at least {MIN_BYTES}")
    return secret
