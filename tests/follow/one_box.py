"""The rig of the tests that run one real ``edge-agent`` following HQ: the box's config on the
test's broker, and HQ's central store trusting it, with campaign C1 and codes minted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.minting import mint_anonymous
from config.model import AgentConfig
from tests.follow.test_follow_over_mqtt import trust_boxes
from tests.hq.conftest import campaign
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.sync.pump_harness import box_config
from tests.sync.test_agent_process_sync import BOX


def box_on(
    tmp_path: Path, mosquitto: MosquittoBroker, files: BrokerFiles, passwords: dict[str, str]
) -> AgentConfig:
    return box_config(
        tmp_path, box=BOX, port=mosquitto.port, ca=files.tls.ca_cert, password=passwords[BOX]
    )


def hq_with_codes(tmp_path: Path, cfg: AgentConfig, count: int) -> tuple[Path, list[str]]:
    """HQ's central store, trusting the box, with ``count`` codes of C1; the codes, sorted."""
    central = trust_boxes(tmp_path / "hq.db", cfg)
    with CentralStore.open(central) as hq_db:
        hq_db.create_campaign(
            campaign("C1", ends_at="2099-01-01T00:00:00+00:00"), now=datetime.now(UTC)
        )
        mint_anonymous(hq_db, campaign_id="C1", count=count, now=datetime.now(UTC))
        codes = [str(r[0]) for r in hq_db.conn.execute("SELECT code FROM codes ORDER BY code")]
    return central, codes
