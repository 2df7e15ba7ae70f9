"""HQ's signing key on disk: an Ed25519 private key in a PKCS#8 PEM file only HQ may read.

The key signs every delta, config and key announcement the boxes will act on, so its file is
made with mode 0600 (at creation, never readable by others for an instant), never overwritten
(a box that pinned its public half would refuse everything HQ signs with a new one), and
refused when group or others may read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from cloud_sync.hq.errors import InputError


def create(path: Path) -> Ed25519PrivateKey:
    """A new key written to ``path`` (mode 0600); InputError if a file is there."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    refusal = f"{path} exists; refusing to replace HQ's key (to rotate: hq-key announce)"
    write_private(path, pem, exists=refusal)
    return key


def write_private(path: Path, data: bytes, *, exists: str) -> None:
    """``data`` into a new file at ``path``, mode 0600 from its first instant, synced;
    InputError(``exists``) if a file is there: HQ's secrets are never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(exists) from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private(path: Path, *, missing: str) -> bytes:
    """The bytes of ``path``, a file only its owner may read; InputError(``missing``) if
    there is none, and one naming what is wrong with the file otherwise (never its bytes)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(missing) from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{path}: mode {stat.S_IMODE(mode):04o} lets others read it; chmod 600")
    return data


def load(path: Path) -> Ed25519PrivateKey:
    """HQ's key from ``path``; InputError naming what is wrong with the file."""
    data = read_private(
        path, missing=f"{path}: no HQ key; create one with `storeside-hq hq-key init`"
    )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: the key is not Ed25519")
    return key
