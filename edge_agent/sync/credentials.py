"""The box's broker password, read from its own file (never from the config, which HQ pushes
and the agent logs). Like the signing key, the file must be readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

MAX_PASSWORD_BYTES = 1024


class CredentialsError(Exception):
    """The password file is missing, readable by others, empty or not a password."""


def read_password(path: Path) -> str:
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"{path}: no broker password file") from None
    except OSError as exc:
        raise CredentialsError(f"{path}: {exc.strerror}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read the broker "
            "password; chmod 600 it"
        )
    if len(data) > MAX_PASSWORD_BYTES:
        raise CredentialsError(f"{path}: over {MAX_PASSWORD_BYTES} bytes: not a password file")
    try:
        password = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise CredentialsError(f"{path}: not UTF-8 text") from None
    if not password or "\n" in password:
        raise CredentialsError(f"{path}: holds no password on one line")
    return password
