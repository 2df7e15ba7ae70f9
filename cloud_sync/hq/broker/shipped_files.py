"""Where the shipped broker setup lives: ``config/mosquitto.conf`` and ``config/mosquitto.acl``
of the installed ``config`` package. Both brokers start from these files, so what the demo
and the tests run is what production runs (README, "Running the broker")."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

# The package's own directory (importlib.resources, not a path relative to this file, so an
# installed HQ finds the files wherever the package is).
_CONFIG: Final = Path(str(files("config")))
SHIPPED_CONF: Final = _CONFIG / "mosquitto.conf"
SHIPPED_ACL: Final = _CONFIG / "mosquitto.acl"
