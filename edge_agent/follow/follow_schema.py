"""Cache migration v10: what the box learns from HQ's delta stream beyond the snapshot tables.

    meta.delta_stream      the stream the cache follows (``cloud_sync/contract/delta.py``);
    meta.delta_watermark   the seq of the last delta applied (0: none since the snapshot)
    uses_elsewhere         per code and other box: its uses there in all and where and when
                           it last was, so this box refuses a single-use code another store
                           redeemed (``ALREADY_REDEEMED`` naming that store and time)
    campaign_box_use       per campaign and other box: what that box used of it, in all
    campaign_elsewhere     per campaign: the sums of ``campaign_box_use``, over every other
                           box (for its budgets) and over this store's other boxes (for the
                           store's allocation), kept by ``delta_apply`` so the hot path reads
                           one row, not a row per box of the fleet
    hq_keys                HQ's signing keys announced since the pin (``hq_trust.py``)

Times are UTC epoch microseconds (``*_us``), like every table of the store's own; the rows are
replaced whole by each change (HQ sends totals), so a delta applied twice changes nothing.
"""

from __future__ import annotations

import sqlite_utils

from cloud_sync.contract.snapshot_format import CAMPAIGN_BOX_USE_DDL, USES_ELSEWHERE_DDL


def migrate(db: sqlite_utils.Database) -> None:
    for ddl in (
        # As a snapshot carries them (one definition: the snapshot format's).
        USES_ELSEWHERE_DDL.format(name="uses_elsewhere"),
        CAMPAIGN_BOX_USE_DDL.format(name="campaign_box_use"),
        "CREATE TABLE campaign_elsewhere (campaign_id TEXT PRIMARY KEY, "
        "redemptions INTEGER NOT NULL, discount INTEGER NOT NULL, "
        "store_redemptions INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE TABLE hq_keys (key_id TEXT PRIMARY KEY, public_key BLOB NOT NULL, "
        "retire_at_us INTEGER) WITHOUT ROWID",
    ):
        db.execute(ddl)
