"""The fleet simulator's errors: what an operator can fix, reported without a traceback.

FleetSimError (an ``HqError``: ``storeside-hq`` prints it and exits 2)
├── UsersFileError    the users file is missing, unreadable or not one the simulator wrote
└── FleetConnectError a box could not reach or log in to the broker at start
"""

from __future__ import annotations

from cloud_sync.hq.errors import HqError


class FleetSimError(HqError):
    pass


class UsersFileError(FleetSimError):
    pass


class FleetConnectError(FleetSimError):
    pass
