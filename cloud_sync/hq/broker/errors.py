"""Typed failures of HQ's broker: starting one, its files, its users.

Every one is a state that refuses the request; the CLI prints ``str(exc)`` on one line and
exits 2 (they are ``HqError``\\ s). Anything else escaping is a bug.

    BrokerError                   base (an ``HqError``)
    ├── BrokerNotFoundError       ``mosquitto`` (or ``mosquitto_passwd``) is not installed
    ├── BrokerStartError          the broker exited or did not listen in time
    ├── BrokerConfigError         a broker setting HQ cannot use: a shipped file lacking a
    │                             line we rely on (or with one we cannot read the same way),
    │                             a URL that is not mqtt:// or mqtts://
    ├── PasswordFileError         a password file line that is not ``user:$7$...``/``$6$``
    ├── BadUsernameError          a username a password file or ACL cannot hold
    └── UnmanagedBrokerError      a user added to a broker HQ did not start (a configured URL)
"""

from __future__ import annotations

from cloud_sync.hq.errors import HqError


class BrokerError(HqError):
    """Base of every broker failure."""


class BrokerNotFoundError(BrokerError):
    """A broker program that is not on the PATH (nor in /usr/sbin)."""


class BrokerStartError(BrokerError):
    """The broker would not start, or stopped answering."""


class BrokerConfigError(BrokerError):
    """A shipped config or ACL file the code cannot use as written, or a bad broker URL."""


class PasswordFileError(BrokerError):
    def __init__(self, path: str, line_number: int, why: str) -> None:
        super().__init__(f"{path}:{line_number}: {why}")
        self.path = path
        self.line_number = line_number


class BadUsernameError(BrokerError):
    def __init__(self, username: str, why: str) -> None:
        super().__init__(f"username {username!r} cannot be used: {why}")
        self.username = username


class UnmanagedBrokerError(BrokerError):
    """Users of a broker HQ did not start are managed where that broker runs."""
