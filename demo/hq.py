"""HQ's part of the demo: campaigns, minting, store keys and snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cloud_sync.hq import identity_enrolment, store_keys
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.errors import HqError
from cloud_sync.hq.minting import Issue, mint_anonymous, mint_for_members
from cloud_sync.hq.receipt_campaigns import create_proximity_campaigns, create_receipt_campaigns
from cloud_sync.hq.snapshot import write_snapshot
from config.model import AgentConfig
from demo.narration import say, step
from edge_agent.domain.promotion import Benefit, BenefitKind, Limits, Promotion, StackingRule

GENERIC = "HOLIMAN100"
CHEN_CARD = "04a1b2c3d4e5f6"  # the UID of Chen's member card
MEMBERS = (
    ("alice", "loyal"),
    ("bob", "at_risk"),
    ("chen", "champion"),
    *((f"member-{i:02d}", "loyal") for i in range(20)),
)


def hq(
    now: datetime, work: Path, keys: dict[str, str]
) -> tuple[dict[str, Path], dict[str, str], bytes]:
    """HQ's side: campaigns, minting, store keys, each store's snapshot.

    Returns the snapshot of each store, the spring coupon code of each member, and the rotating
    identifier key of Chen's phone (she opted in to in-store offers).
    """
    step("HQ: campaigns minted, store keys registered, a snapshot for each store")
    central = CentralStore.create(work / "hq.db", fmt=AgentConfig().code_format.to_format())
    spring = Promotion(
        campaign_id="spring-10",
        name="Spring 10% (over 20.00)",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(
            stacking_class="member_coupon",
            combines_with=frozenset({"tier_discount", "partner_code"}),
        ),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=21),
        min_spend=2000,
        requires_member=True,
    )
    influencer = Promotion(
        campaign_id="holiman",
        name="Influencer 1.00 off",
        benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=100),
        stacking=StackingRule(
            stacking_class="partner_code",
            combines_with=frozenset({"tier_discount", "member_coupon"}),
        ),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        limits=Limits(total_uses_per_code=1000, uses_per_member=1),
    )
    central.create_campaign(spring, now=now)
    central.create_campaign(influencer, now=now)
    members = [MemberRow(member_id=m, segment=s, tier="gold") for m, s in MEMBERS]
    report = mint_for_members(
        central,
        campaign_id="spring-10",
        members=members,
        now=now,
        issue=Issue(channel="app", valid_for=timedelta(days=14)),
    )
    say(f"   minted {report.created} member-bound codes for spring-10 in {report.namespaces}")
    anon = mint_anonymous(central, campaign_id="holiman", count=50_000, now=now)
    say(f"   minted {anon.created:,} anonymous codes for paper vouchers (holiman campaign)")
    central.create_generic("holiman", "HOLIMAN100", now=now)
    say("   created the generic influencer code HOLIMAN100 (1 use per customer)")
    codes = {
        str(row[0]): str(row[1])
        for row in central.conn.execute(
            "SELECT member_id, code FROM codes WHERE campaign_id = 'spring-10'"
        )
    }
    # The same function as `storeside-hq receipt-campaigns create`.
    create_receipt_campaigns(
        central, now=now, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=90)
    )
    say("   created the five receipt campaigns, one per segment (DOMAIN.md section 3)")
    create_proximity_campaigns(
        central, now=now, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30)
    )
    say("   created the five proximity campaigns (in-store offers, same depths)")
    phone_key = _enrol_chen(central, now)
    for store_id, public_key in keys.items():
        key = store_keys.register(central, store_id, public_key, now=now)
        say(f"   registered {store_id}'s coupon signing key {key.key_id}")
    snapshots = {}
    for store_id in keys:
        # storeside-hq namespace assign: where the store may mint receipt coupons offline.
        namespace = central.assign_namespace(store_id, now=now)
        snapshots[store_id] = work / f"{store_id}.snapshot.db"
        summary = write_snapshot(central, snapshots[store_id], store_id, now=now)
        say(
            f"   snapshot for {store_id}: {summary.codes:,} codes, {summary.campaigns} campaigns, "
            f"namespace {namespace}"
        )
    central.close()
    return snapshots, codes, phone_key


def _enrol_chen(central: CentralStore, now: datetime) -> bytes:
    """Chen opts in to in-store offers; HQ enrols her phone app's key and her member card."""
    central.upsert_members([MemberRow(member_id="chen", proximity_consent=True)], now=now)
    # An hour ago, so the demo can replay an identifier her phone sent half an hour ago.
    made = identity_enrolment.new_key(central, "chen", now=now - timedelta(hours=1))
    identity_enrolment.enrol_card(central, "chen", CHEN_CARD, now=now)
    say(
        f"   Chen opted in to in-store offers: her app's rotating-identifier key {made.key_id} "
        "and her member card enrolled (storeside-hq identities key-new / card-enrol)"
    )
    try:
        identity_enrolment.new_key(central, "bob", now=now)
    except HqError as exc:
        say(f"   Bob did not opt in: HQ refuses to enrol him ({exc})")
    return made.key
