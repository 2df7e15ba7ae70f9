"""Mosquitto's password file, read and written here, so both brokers share one file.

Theory of operation
-------------------
One line per user, ``username:hash``, as ``mosquitto_passwd`` writes it. Mosquitto 2.0 writes
``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` (12-byte salt, 101 iterations,
64-byte key) and still reads 1.x's ``$6$<base64 salt>$<base64 SHA-512(password + salt)>``;
both are verified here, and new hashes are ``$7$``, so a file this module writes is read by
Mosquitto unchanged and a file ``mosquitto_passwd`` made is read by the embedded broker.

amqtt's own ``FileAuthPlugin`` (0.12.1) is not used: it reads Argon2 or bcrypt hashes
(pwdlib), which Mosquitto cannot read, and SHA-512 crypt, which Python 3.13 drops. One file
format for both brokers means a pilot that installs Mosquitto later keeps its users.

101 iterations is ``mosquitto_passwd``'s own default. The passwords Storeside hands out are
machine-made secrets (``secrets.token_urlsafe``), for which a slow hash buys nothing, while a
fleet reconnecting after an outage pays the hash once per connect.

The file holds hashes, never passwords, and is written atomically with mode 0600 (a broker
reloading it mid-write must not see half a file). Usernames must not contain ``:`` (the
separator) or control characters (a line break would forge a line) and must not be empty.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cloud_sync.hq.broker.errors import BadUsernameError, PasswordFileError

PBKDF2_ITERATIONS: Final = 101  # mosquitto_passwd 2.0's default (see the docstring)
SALT_BYTES: Final = 12  # ditto
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_username(username: str) -> str:
    """``username`` if a password file line can hold it, else ``BadUsernameError``."""
    if not username:
        raise BadUsernameError(username, "empty")
    if ":" in username:
        raise BadUsernameError(username, "holds ':', the password file's separator")
    if _CONTROL.search(username):
        raise BadUsernameError(username, "holds a control character")
    return username


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 ``$7$`` hash of ``password`` (a fresh random salt unless given)."""
    if not password:
        # An empty password is a forgotten one; refuse it rather than let anyone in.
        raise ValueError("an empty password")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` is the one ``hashed`` was made from (``$7$`` or ``$6$``)."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[:2] == ["", "7"]:
            iterations = int(parts[2])
            salt, expected = _unb64(parts[3]), _unb64(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        elif len(parts) == 4 and parts[:2] == ["", "6"]:
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, binascii.Error):
        return False
    # Constant time: the comparison must not tell a guesser how many bytes were right.
    return hmac.compare_digest(got, expected)


def hash_fault(hashed: str) -> str | None:
    """Why ``hashed`` is no hash this module can verify, or None if it is one."""
    parts = hashed.split("$")
    if len(parts) == 5 and parts[:2] == ["", "7"] and parts[2].isdigit():
        encoded = parts[3:]
    elif len(parts) == 4 and parts[:2] == ["", "6"]:
        encoded = parts[2:]
    else:
        return "not a Mosquitto $7$ or $6$ hash (a plaintext file? run mosquitto_passwd -U)"
    try:
        for text in encoded:
            _unb64(text)
    except (ValueError, binascii.Error):
        return "bad base64 in the hash"
    return None


def read_password_file(path: Path) -> dict[str, str]:
    """username -> hash; a ``PasswordFileError`` names the first line that is neither a user,
    a blank nor a ``#`` comment (Mosquitto skips those too)."""
    users: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        username, sep, hashed = line.partition(":")
        if not sep:
            raise PasswordFileError(str(path), number, "no ':' between user and hash")
        fault = hash_fault(hashed)
        if fault is not None:
            raise PasswordFileError(str(path), number, fault)
        if username in users:
            raise PasswordFileError(str(path), number, f"user {username!r} appears twice")
        users[check_username(username)] = hashed
    return users


def write_hashes(path: Path, hashes: Mapping[str, str]) -> None:
    """Write username -> hash lines to ``path`` atomically, mode 0600."""
    for username in hashes:
        check_username(username)
    text = "".join(f"{username}:{hashed}\n" for username, hashed in hashes.items())
    # Same directory, so os.replace is a rename within one file system (atomic on POSIX).
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write ``users`` (name -> password) to ``path`` as hashes Mosquitto reads."""
    write_hashes(path, {check_username(name): hash_password(pw) for name, pw in users.items()})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
