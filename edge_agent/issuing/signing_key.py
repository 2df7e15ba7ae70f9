"""The store's coupon signing key: an Ed25519 private key in a PEM file only the agent may read.

The file is PKCS#8 PEM, unencrypted (the agent starts unattended), created with mode 0600 and
refused when group or others may read it (like ssh refuses a loose private key): a key that
leaked lets anyone print coupons this store's neighbours will honour until HQ revokes it.

Errors::

    SigningKeyError            base; the CLI prints it on one line
    ├── KeyFileExistsError     ``create`` would overwrite a key (never: coupons signed with it
    │                          are still in customers' hands)
    ├── KeyFileMissingError    no key file at the configured path (run `edge-agent keys init`)
    ├── KeyFilePermissionError the file is readable by group or others
    └── KeyFileFormatError     not an Ed25519 private key in PEM
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import CouponSigner, key_id, raw_public_key

FILE_MODE = 0o600


class SigningKeyError(Exception):
    """The signing key file cannot be used."""


class KeyFileExistsError(SigningKeyError):
    pass


class KeyFileMissingError(SigningKeyError):
    pass


class KeyFilePermissionError(SigningKeyError):
    pass


class KeyFileFormatError(SigningKeyError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyInfo:
    path: Path
    key_id: str
    public_key: str  # text form HQ registers (unpadded base64url of the raw 32 bytes)


def info(path: Path, key: Ed25519PrivateKey) -> KeyInfo:
    public = key.public_key()
    return KeyInfo(
        path=path,
        key_id=key_id(public),
        public_key=token_codec.public_key_text(raw_public_key(public)),
    )


def create(path: Path) -> KeyInfo:
    """Generate a key and write it to ``path`` (mode 0600); never overwrites."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two `keys init` racing cannot both write; the mode is set at creation, so
        # the key is never readable by others, not even for an instant.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise KeyFileExistsError(
            f"{path} already exists; refusing to replace a signing key (coupons signed with "
            "it are still valid). Move it away first if you really mean to rotate."
        ) from None
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return info(path, key)


def load(path: Path) -> Ed25519PrivateKey:
    """Read the private key at ``path``; see the error tree in the module docstring."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileMissingError(
            f"{path}: no signing key; create one with `edge-agent keys init`"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: {exc.strerror}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFilePermissionError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read the signing key; "
            f"chmod 600 it"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileFormatError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileFormatError(f"{path}: the key is not Ed25519")
    return key


def load_signer(path: Path, *, store_id: str) -> CouponSigner:
    """The coupon signer of ``store_id`` from its key file."""
    return CouponSigner(private_key=load(path), store_id=store_id)
