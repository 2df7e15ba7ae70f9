"""Generic literal codes (influencer, brand imports) redeem through the same service."""

from __future__ import annotations

from pathlib import Path

from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import Accepted, Reason, Refused
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, open_cache, req


def test_literal_code_commits_once_per_member_and_shows_status(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    cache.put_codes([CodeRecord(code="HOLIMAN100", campaign_id="G1", member_id=None)])
    service = RedemptionService(cache, fmt=FMT)
    (first,) = service.commit(req("holiman 100", txn="T-1", member="M1"))
    assert isinstance(first.decision, Accepted) and first.redemption is not None
    (second,) = service.commit(req("HOLIMAN100", txn="T-2", member="M2"))
    assert isinstance(second.decision, Accepted)
    assert service.status("Holiman-100", NOW).uses == 2
    (typo,) = service.validate(req("HOLIMAN10", txn=None))
    assert isinstance(typo, Refused) and typo.reason is Reason.MALFORMED
    cache.close()
