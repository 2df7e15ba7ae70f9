"""The shipped ``config/mosquitto.conf`` with local paths, ports and user: what a Mosquitto HQ
starts (a pilot's, or a test's) actually reads.

Theory of operation
-------------------
``derive_config`` reads the shipped file line by line and rewrites only the values that must
differ off the production host: the listener's port and address, the TLS files, the password
and ACL files, the persistence directory, the log destination and the user to run as. Every
other line (persistence, ``allow_anonymous false``, TLS version, packet limits, ...) is the
production one, so a pilot and the tests run the file that ships. A key the derivation expects
but cannot find, or finds twice, is a ``BrokerConfigError``: renaming a setting in the shipped
file breaks the derivation instead of silently running something else. The ACL is the shipped
``config/mosquitto.acl`` itself, not a copy.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from cloud_sync.hq.broker.errors import BrokerConfigError
from cloud_sync.hq.broker.shipped_files import SHIPPED_ACL
from cloud_sync.hq.broker.tls_files import TlsFiles


@dataclass(frozen=True, kw_only=True)
class BrokerFiles:
    """Everything a derived config points at (the tests share one set per session)."""

    tls: TlsFiles
    password_file: Path
    acl_file: Path = SHIPPED_ACL


def derive_config(
    shipped: str,
    *,
    port: int,
    files: BrokerFiles,
    persistence_dir: Path,
    log_path: Path,
    plain_port: int | None = None,
    bind_address: str = "127.0.0.1",
    debug_log: bool = True,
) -> str:
    """The shipped config with local paths, ports and user (see the module docstring).

    ``plain_port`` adds a plain-TCP listener on 127.0.0.1 (quick tests and a loopback-only
    demo). ``debug_log`` adds ``log_type all``: the lines naming each denied PUBLISH, which a
    failing ACL test needs, and a busy broker's log does not.
    """
    values = {
        "listener": f"{port} {bind_address}",
        "certfile": str(files.tls.server_cert),
        "keyfile": str(files.tls.server_key),
        "cafile": str(files.tls.ca_cert),
        "password_file": str(files.password_file),
        "acl_file": str(files.acl_file),
        # Mosquitto requires the trailing slash: it appends the file name to this string.
        "persistence_location": f"{persistence_dir}/",
        "log_dest": f"file {log_path}",
        # Mosquitto started as root drops to `user`; stay whoever starts it, so it can read
        # the files in that user's directory.
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }
    seen: set[str] = set()
    lines: list[str] = []
    for line in shipped.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        if key in values:
            if key in seen:
                raise BrokerConfigError(f"{key} appears twice in the shipped config")
            seen.add(key)
            lines.append(f"{key} {values[key]}")
        else:
            lines.append(line)
    missing = sorted(values.keys() - seen)
    if missing:
        raise BrokerConfigError(f"the shipped mosquitto.conf has no {', '.join(missing)} line")
    if debug_log:
        lines.append("log_type all")
    if plain_port is not None:
        # Appended last, so none of the TLS options above apply to it; the password file and
        # ACL do (per_listener_settings false). Loopback only, whatever bind_address says.
        lines.append(f"listener {plain_port} 127.0.0.1")
    return "\n".join(lines) + "\n"
