"""Cache migration v11: what the box keeps of HQ's config pushes, so a restart knows it.

    config_push   one row (``id`` 1):
      seen_version     the newest authentic config version received, whatever came of it: a
                       version at or below it is refused as a replay, also after a restart
      seen_digest      SHA-256 (hex) of that document's body: the same document delivered
                       again (it is retained: at every connect) is no new push and is ignored
      running_version  the version of the last config applied and found well (null: none)
      overlay          that config's overlay, JSON: laid over the file's config at start
      result           the last ``config_result`` payload, published again after a connect

The overlay is kept in the cache, not written into the config file: the file is the box's
own (an operator's, a provisioning tool's), and HQ's layer over it can be dropped whole.
"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE config_push (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "seen_version INTEGER, seen_digest TEXT, running_version INTEGER, "
        "overlay TEXT NOT NULL DEFAULT '{}', result BLOB)"
    )
    db.execute("INSERT INTO config_push (id) VALUES (1)")
