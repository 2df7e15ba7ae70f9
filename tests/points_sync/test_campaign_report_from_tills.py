"""The campaign and band report over what real tills booked: a box's checkouts, a partial
return and a void, sent over the wire to HQ and posted, then reported. The box names each
return line by the sale's side it reverses; HQ counts it as that side's reversal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.hq.finance import campaign_report
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from cloud_sync.hq.ledger import intake, operations
from config.points import PointsConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points_rules.returns import ReturnedLine
from edge_agent.domain.promotion import Member
from edge_agent.points.outcomes import Return, Sale
from edge_agent.points.service import PointsService
from tests.points_sync.link import Fault, Uplink
from tests.sync.test_batch_signing import registered

STORE, BOX, P = "store-001", "box-001", "main"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(str(tmp_path / "events.db"))
    yield store
    store.close()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    opened = CodeCache.open(tmp_path / "box.db", store_id=STORE, box_id=BOX)
    opened.put_member(Member(member_id="M1", tier="std"))
    yield opened
    opened.close()


def sale(txn: str, lines: list[BasketLine], burn: int | None, at: datetime) -> Sale:
    return Sale(
        till_id="till-1",
        transaction_id=txn,
        cashier_id="c-1",
        member_id="M1",
        basket=Basket(lines=tuple(lines)),
        burn_points=burn,
        now=at,
    )


def test_returns_and_voids_count_as_reversals_of_the_sides_they_undo(
    hq: EventStore, cache: CodeCache
) -> None:
    hq.run(lambda tx: operations.import_balance(tx, MemberAccount(P, "M1"), 500, at=T0, now=T0))
    # The box learns nothing of HQ here: its allowance covers the burn (an offline store).
    policy = PointsConfig.model_validate(
        {"enabled": True, "burn": {"offline_allowance_points": 500}}
    ).to_policy()
    points = PointsService(cache, policy=policy, programme=P)
    band_a = BasketLine(sku="A", category="food", quantity=4, unit_price=1000, unit_cost=400)
    band_c = BasketLine(sku="C", category="food", quantity=5, unit_price=1000, unit_cost=900)
    kept = points.checkout(sale("T-1", [band_a, band_c], 100, T0 + timedelta(minutes=1)))
    voided = points.checkout(sale("T-2", [band_a], None, T0 + timedelta(minutes=2)))
    assert kept.ok and voided.ok and kept.burned == 100 and kept.earned > 0
    back = points.return_lines(
        Return(
            till_id="till-2",
            return_id="R-1",
            sale_till_id="till-1",
            transaction_id="T-1",
            cashier_id="c-2",
            lines=(ReturnedLine(index=0, quantity=1), ReturnedLine(index=1, quantity=2)),
            now=T0 + timedelta(minutes=3),
        )
    )
    void = points.void(
        till_id="till-1", transaction_id="T-2", cashier_id="c-1", now=T0 + timedelta(minutes=4)
    )
    assert back.ok and back.taken_back > 0 and back.given_back > 0
    assert void.taken_back == voided.earned

    ingest = Ingest(store=hq, keyring=Keyring(lambda: [registered(KEY, store=STORE)]))
    uplink = Uplink(ingest=ingest, key=KEY, store_id=STORE, box_id=BOX, batch_events=50)
    uplink.send(cache, Fault.NONE, T0 + timedelta(minutes=5))
    tally = intake.post_all(hq, clock=lambda: T0 + timedelta(minutes=5))
    assert tally.booked == 5  # T-1 earn and burn, T-2 earn, the return, the void

    got = hq.run(
        lambda tx: campaign_report.report(tx, programme=P, start=T0, end=T0 + timedelta(hours=1))
    )
    total = campaign_report.Totals(
        key="",
        earned=kept.earned + voided.earned,
        earn_reversed=back.taken_back + void.taken_back,
        burned=kept.burned,
        burn_reversed=back.given_back,
    )
    assert got.campaigns == (total,)
    bands = {t.key: t for t in got.bands}
    assert sum(t.net_earned for t in bands.values()) == (
        kept.earned - back.taken_back
    )  # the voided sale nets to nothing
    assert sum(t.net_burned for t in bands.values()) == kept.burned - back.given_back
    by_line = {x.line: x.points for x in kept.lines if x.side == "earn"}
    assert bands["C"].earned == by_line.get(1, 0) == 0  # band C earns nothing by default
