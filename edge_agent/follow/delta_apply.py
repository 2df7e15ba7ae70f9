"""Applying HQ's code cache deltas to the box's cache, in order, each in one transaction.

Theory of operation
-------------------
The cache follows one delta stream of its store (``cloud_sync/contract/delta.py``) from a
position: ``meta.delta_stream`` and ``meta.delta_watermark``, the seq of the last delta
applied. A snapshot sets the position it was cut at (``follow``); a cache with none (a
snapshot loaded by hand, from before streams) follows nothing, and every delta is
``other_stream`` to it until a snapshot says where to start.

``apply`` reads the position and places the delta (``delta.place``) inside one BEGIN
IMMEDIATE transaction, so two callers cannot both apply the same delta:

    next          every change, in order, then the watermark: all or nothing
    duplicate     nothing (a redelivery: QoS 1 delivers at least once)
    gap           nothing; the caller asks HQ for the deltas from watermark + 1
    other_stream  nothing; the caller resyncs from a snapshot

A change is HQ's whole word on what it touches, so applying it over what the box did itself is
safe: a code issued again keeps the box's status and links; ``code.redeemed_elsewhere`` and
``campaign.used_elsewhere`` naming this box are its own use seen from HQ, and are skipped (the
box counts its own in ``code_usage`` and ``campaign_usage``; a box holding no record of the
code or campaign, its cache lost, takes HQ's word for its own use instead); a link made at HQ
goes into ``code_links`` like a till's (mode ``hq``), so the member is offered the code at the
next checkout, unless a till here linked it already; ``member.issued_elsewhere`` adds a row the
receipt coupon caps count (``issues_elsewhere.py``), skipping this box's own issues the same
way; ``member.identities`` replaces the member's presence identities
(``edge_agent/cache/member_identities.py``; not stored for a member the box does not know as
consenting: skipped), and ``member.changed`` withdrawing consent deletes them at once;
``member.points`` replaces HQ's balance of the member and its marks
(``edge_agent/points/balances.py``: what the offline burn bound starts from). A change
HQ signed that the box still cannot take (a campaign body that is no promotion, a store key
that is no key, an identity set or points marks that do not decode) refuses the
whole delta with ``DeltaRefusedError``: nothing of it is applied, the watermark stays, and the
caller reports it (HQ sent something broken; applying the rest would leave the cache a state HQ
never had).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.delta import Change, Delta, Op, Place, place
from cloud_sync.contract.member_identities import decode_body
from edge_agent.cache import member_identities, snapshot_load
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_epoch_s, to_us
from edge_agent.domain.promotion_codec import promotion_from_dict
from edge_agent.domain.token_codec import public_key_from_text
from edge_agent.follow import issues_elsewhere
from edge_agent.follow.stream_position import (
    Position,
    follow,
    position,
    refresh_campaign_sums,
)
from edge_agent.points import balances

__all__ = ["Applied", "DeltaRefusedError", "Position", "Refusal", "apply", "follow", "position"]

LINK_MODE: Final = "hq"  # code_links.mode of a link HQ made


class Refusal(StrEnum):
    OTHER_STORE = "other_store"  # a delta of another store's stream
    BAD_CAMPAIGN = "bad_campaign"  # campaign.changed whose body is no promotion
    BAD_STORE_KEY = "bad_store_key"  # store_key.registered whose key is no Ed25519 key
    BAD_IDENTITIES = "bad_identities"  # member.identities whose body is no identity set
    BAD_POINTS = "bad_points"  # member.points whose marks do not decode


class DeltaRefusedError(Exception):
    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    place: Place
    position: Position  # after the delta
    applied: int = 0  # changes applied
    skipped: int = 0  # changes naming this box (its own redemptions and issues)


def apply(cache: CodeCache, delta: Delta) -> Applied:
    """Place ``delta`` against the cache's position and apply it if it is the next one (see
    the module docstring); ``DeltaRefusedError`` (nothing applied) if it cannot be."""
    if delta.store_id != cache.store_id:
        why = f"a delta of store {delta.store_id!r} for a box of {cache.store_id!r}"
        raise DeltaRefusedError(Refusal.OTHER_STORE, why)
    campaigns = False
    with cache.transaction() as conn:
        at = position(conn)
        where = place(delta, stream=at.stream or "", watermark=at.watermark)
        if where is not Place.NEXT:
            return Applied(place=where, position=at)
        applied = skipped = 0
        for change in delta.changes:
            if _APPLY[change.op](conn, change, cache.box_id):
                applied += 1
            else:
                skipped += 1
            campaigns = campaigns or change.op is Op.CAMPAIGN_CHANGED
        if campaigns:
            snapshot_load.bump_generation(conn)
        follow(conn, stream=delta.stream, watermark=delta.seq)
        # The cache is as fresh as HQ's word: its age (the offline policy's) runs from here.
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('synced_at', ?)",
            (delta.issued_at.isoformat(),),
        )
    if campaigns:
        cache.campaigns_changed()  # this connection's commit does not move data_version
    after = Position(stream=delta.stream, watermark=delta.seq)
    return Applied(place=Place.NEXT, position=after, applied=applied, skipped=skipped)


def _code_issued(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    conn.execute(
        "INSERT INTO codes VALUES (?, ?, ?, 'active', ?, ?, ?, ?, NULL) ON CONFLICT (code) "
        "DO UPDATE SET campaign_id = excluded.campaign_id, member_id = excluded.member_id, "
        "channel = excluded.channel, variant = excluded.variant, "
        "issued_at = excluded.issued_at, expires_at = excluded.expires_at",
        (
            c["code"],
            c["campaign_id"],
            c["member_id"],
            c["channel"],
            c["variant"],
            to_epoch_s(c["issued_at"]),
            to_epoch_s(c["expires_at"]),
        ),
    )
    return True


def _code_revoked(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    conn.execute("UPDATE codes SET status = 'revoked' WHERE code = ?", (c["code"],))
    return True


def _code_linked(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    conn.execute(
        "UPDATE codes SET linked_member_id = ? WHERE code = ?", (c["member_id"], c["code"])
    )
    conn.execute(
        "INSERT INTO code_links VALUES (?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
        (c["code"], c["member_id"], LINK_MODE, to_us(c["at"])),
    )
    return True


def _redeemed_elsewhere(conn: sqlite3.Connection, c: Change, box: str) -> bool:
    if c["box_id"] == box and _holds(conn, "code_usage", "code", c["code"]):
        return False  # this box's own redemption, already in code_usage
    conn.execute(
        "INSERT OR REPLACE INTO uses_elsewhere VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            c["code"],
            c["box_id"],
            c["store_id"],
            c["till_id"],
            c["transaction_id"],
            to_us(c["at"]),
            c["uses"],
        ),
    )
    return True


def _member_changed(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    conn.execute(
        "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
        (c["member_id"], c["segment"], c["tier"], int(c["proximity_consent"])),
    )
    if not c["proximity_consent"]:  # HQ sends the empty set too; this does not wait for it
        member_identities.forget(conn, c["member_id"])
    return True


def _member_identities(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    try:
        identities = decode_body(c["body"])
    except DecodeError as exc:
        why = f"member {c['member_id']}: {exc.reason}: {exc}"
        raise DeltaRefusedError(Refusal.BAD_IDENTITIES, why) from None
    salt = bytes.fromhex(c["card_salt"])  # checked by the delta's decoder
    return member_identities.replace(conn, c["member_id"], identities, card_salt=salt)


def _member_points(conn: sqlite3.Connection, c: Change, box: str) -> bool:
    try:
        balances.put(
            conn,
            member_id=c["member_id"],
            programme=c["programme"],
            balance=c["balance"],
            marks=c["marks"],
            box_id=box,
        )
    except balances.BadMarksError as exc:
        raise DeltaRefusedError(Refusal.BAD_POINTS, str(exc)) from None
    return True


def _campaign_changed(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    try:
        promotion = promotion_from_dict(json.loads(c["body"]))
    except (ValueError, TypeError, KeyError) as exc:
        why = f"campaign {c['campaign_id']}: {exc}"
        raise DeltaRefusedError(Refusal.BAD_CAMPAIGN, why) from None
    if promotion.campaign_id != c["campaign_id"]:
        why = f"campaign {c['campaign_id']}: the body is campaign {promotion.campaign_id}"
        raise DeltaRefusedError(Refusal.BAD_CAMPAIGN, why)
    conn.execute(
        "INSERT OR REPLACE INTO campaigns (campaign_id, body) VALUES (?, ?)",
        (c["campaign_id"], c["body"]),
    )
    return True


def _campaign_used_elsewhere(conn: sqlite3.Connection, c: Change, box: str) -> bool:
    if c["box_id"] == box and _holds(conn, "campaign_usage", "campaign_id", c["campaign_id"]):
        return False  # this box's own use, already in campaign_usage
    conn.execute(
        "INSERT OR REPLACE INTO campaign_box_use VALUES (?, ?, ?, ?, ?)",
        (c["campaign_id"], c["box_id"], c["store_id"], c["redemptions"], c["discount"]),
    )
    refresh_campaign_sums(conn, c["campaign_id"])
    return True


def _holds(conn: sqlite3.Connection, table: str, column: str, key: str) -> bool:
    """The box keeps its own record of ``key``: without one (its cache was lost, or is new),
    HQ's word for this box's own use is all there is, and is taken like any other box's."""
    sql = f"SELECT 1 FROM {table} WHERE {column} = ?"  # noqa: S608 (names are ours)
    return conn.execute(sql, (key,)).fetchone() is not None


def _store_key_registered(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    raw = public_key_from_text(c["public_key"])
    if raw is None:
        why = f"key {c['key_id']}: {c['public_key']!r} is no Ed25519 public key"
        raise DeltaRefusedError(Refusal.BAD_STORE_KEY, why)
    conn.execute(
        "INSERT INTO store_keys VALUES (?, ?, ?, ?, NULL) ON CONFLICT (key_id) DO UPDATE "
        "SET store_id = excluded.store_id, public_key = excluded.public_key, "
        "registered_at = excluded.registered_at",
        (c["key_id"], c["store_id"], raw, to_epoch_s(c["registered_at"])),
    )
    return True


def _store_key_revoked(conn: sqlite3.Connection, c: Change, _box: str) -> bool:
    conn.execute(
        "UPDATE store_keys SET revoked_at = ? WHERE key_id = ?",
        (to_epoch_s(c["revoked_at"]), c["key_id"]),
    )
    return True


_APPLY: Final[dict[Op, Callable[[sqlite3.Connection, Change, str], bool]]] = {
    Op.CODE_ISSUED: _code_issued,
    Op.CODE_REVOKED: _code_revoked,
    Op.CODE_LINKED: _code_linked,
    Op.CODE_REDEEMED_ELSEWHERE: _redeemed_elsewhere,
    Op.MEMBER_CHANGED: _member_changed,
    Op.MEMBER_ISSUED_ELSEWHERE: issues_elsewhere.apply,
    Op.MEMBER_IDENTITIES: _member_identities,
    Op.MEMBER_POINTS: _member_points,
    Op.CAMPAIGN_CHANGED: _campaign_changed,
    Op.CAMPAIGN_USED_ELSEWHERE: _campaign_used_elsewhere,
    Op.STORE_KEY_REGISTERED: _store_key_registered,
    Op.STORE_KEY_REVOKED: _store_key_revoked,
}
