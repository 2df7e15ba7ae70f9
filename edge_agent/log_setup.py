"""The agent's logging: one format on stderr, whatever a library did at import.

python-escpos calls ``logging.basicConfig()`` when it is imported (``escpos/capabilities.py``),
which installs a root handler in its own format; a later plain ``basicConfig`` is then a no-op.
``configure`` runs after every import has happened and replaces the root handlers (``force``),
so the agent's lines always look the same to journald and to whoever greps them.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: int = logging.INFO) -> None:
    """Send every record at ``level`` or above to stderr in ``FORMAT``, replacing any handler
    a library installed on the root logger."""
    logging.basicConfig(level=level, format=FORMAT, force=True)
