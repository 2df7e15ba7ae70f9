"""The event store's schema as code: one list of migrations for both backends.

Theory of operation
-------------------
SQLite and PostgreSQL run the same statements; only three column types are spelled per
dialect (``{int}`` a 64-bit integer, ``{blob}`` bytes, ``{id}`` a generated key), so the two
backends cannot drift apart table by table. The version applied is the row of
``ingest_schema`` (not SQLite's ``user_version``: PostgreSQL has none, and one mechanism for
both keeps "one behaviour" true of migrations too). ``migrate`` runs in one transaction under
the migration lock (``Tx.lock_keys``), so two workers starting at once apply each step once;
a store written by a newer version is refused rather than half understood.

Tables (times are UTC epoch microseconds):

    streams       one row per box: the head of its verified stream (``stored_through`` and
                  the last event's hash and chained flag: the ``ChainLink`` the next event
                  must link to) and when its last batch changed anything. The row is the
                  per-box lock of PostgreSQL's ingest (``SELECT ... FOR UPDATE``).
    events        every event stored, once: (box_id, seq) is the key, event_id is unique,
                  the attribution columns are what HQ's views filter by, ``body`` is the
                  text exactly as the box stored and hashed it, ``hash`` its event_hash.
                  Every box holds exactly its events 1..stored_through: nothing else is
                  ever inserted (out-of-order batches wait in ``parked``).
    parked        batches that arrived ahead of a hole, as received, until the hole fills
    quarantine    what was refused and why; one row per distinct (topic, payload, reason),
                  counted when it comes again, so a redelivery adds nothing
    chain_breaks  the first event of a batch that did not link on, per box and seq
    conflicts     double redemptions across boxes and second versions of a stored event
    presence      each box's last state (with its session) and its latest health message

Version 2, HQ's fan-out to the stores (``cloud_sync/hq/fanout/``), in the same database so
the events that change what stores must know are queued in the transaction that stores them:

    fanout_queue      (box_id, seq) of each stored redemption and reversal not yet fanned out;
                      the fan-out takes rows and deletes them in one transaction
    code_box_use      per code and box: its uses there, and its last redemption
    campaign_box_use  per campaign and box: redemptions and discount, net of returns
    delta_heads       per store: its delta stream's id and last seq
    deltas            per store and seq: the signed delta document, kept to answer positions
    box_positions     what each box last said of its cache's place in its store's stream
    fanout_meta       the fan-out's cursors (the central store's journal)
    hq_announcements  HQ's key announcements, signed, sent to every box with each answer

Version 3: ``config_pushes``, every config push (null ``store_id``: the fleet's), HQ's
config layers for ``storeside-hq config push`` (``cloud_sync/hq/config_push/``).

Version 4, receipt coupon issues for the other stores' frequency caps
(``cloud_sync/hq/fanout/member_issues.py``):

    issue_queue    (box_id, seq) of each stored ``coupon.issued`` / ``coupon.withheld`` with a
                   member, not yet fanned out; queued in the transaction that stores it
    member_issues  per sale (box, till, transaction id): the member, the store and when, kept
                   for ``member_issues.WINDOW`` so a snapshot can seed a new cache's caps

Version 5, proximity offers pushed to the member's phone or wallet
(``cloud_sync/hq/member_push/``) and the proximity results report:

    member_push    one row per stored ``offer.triggered``, queued in the transaction that
                   stores it and kept afterwards as the offer's delivery record: its state
                   (pending, delivered, failed), attempts, when it is next due, the claim of
                   the worker sending it, the last HTTP status and error
    events_presence_by_time   a partial index of the presence events by time, which the
                   results report reads by window

Version 6, the points ledger (``cloud_sync/hq/ledger/``, issue 11). An account is
(programme, holder, category): ``holder`` is the member id, or ``''`` for the programme's own
accounts, whose ``category`` is then ``liability`` or ``breakage``:

    ledger_events    every booked event once: ``pos`` its place in booking order, its id (the
                     programme-wide idempotency key), kind, time, origin, campaign, the codec
                     text (``edge_agent/domain/points/codec.py``) and, for a till's event,
                     the box event (box_id, box_seq) it travelled in
    ledger_entries   one row per posting, append-only: (pos, idx) its key; the columns the
                     ledger API filters on copied from its event; ``signed`` the balance change
    ledger_accounts  per account: its running balance, when its opening entry was dated
                     (null for the programme's accounts, which need none) and its last pos
    ledger_daily     per account and UTC day: the net of its entries dated that day, so a
                     closing balance at any time sums days, not entries
    ledger_lines     what each basket line of a till's event earned or burned (band,
                     campaign): the finance reports per campaign and margin band
    ledger_marks     per member, programme and box: the last box seq booked for the member,
                     which ``member.points`` carries to the boxes
    points_queue     (box_id, seq) of each stored ``points.posted`` not yet booked; queued in
                     the transaction that stores the event, so booked exactly once
    points_refusals  a till's event the ledger could not book (a conflict, an unreadable
                     body), with its reason: never dropped unseen; reason ``overdraft`` is
                     the exception, an event booked below zero and flagged (``intake.py``)
    points_balance_queue   (programme, member) whose balance the stores must hear again
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


TYPES: Final = {
    Dialect.SQLITE: {"int": "INTEGER", "blob": "BLOB", "id": "INTEGER PRIMARY KEY"},
    Dialect.POSTGRESQL: {
        "int": "BIGINT",
        "blob": "BYTEA",
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE streams (box_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
        "stored_through {int} NOT NULL, head_hash TEXT NOT NULL, head_chained {int} NOT NULL, "
        "last_batch_at {int})",
        "CREATE TABLE events (box_id TEXT NOT NULL, seq {int} NOT NULL, event_id TEXT NOT NULL, "
        "store_id TEXT NOT NULL, type TEXT NOT NULL, code TEXT, occurred_at {int} NOT NULL, "
        "till_id TEXT NOT NULL, cashier_id TEXT NOT NULL, member_id TEXT, "
        "amount {int} NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL, "
        "received_at {int} NOT NULL, PRIMARY KEY (box_id, seq))",
        # event ids are UUIDv7-ordered, so this index grows at its right edge.
        "CREATE UNIQUE INDEX events_by_event_id ON events (event_id)",
        # The double-redemption check and `events --code` look redemptions up by code.
        "CREATE INDEX events_redeemed_by_code ON events (code) WHERE type = 'code.redeemed'",
        "CREATE TABLE parked (box_id TEXT NOT NULL, first_seq {int} NOT NULL, "
        "last_seq {int} NOT NULL, received_at {int} NOT NULL, payload {blob} NOT NULL, "
        "PRIMARY KEY (box_id, first_seq, last_seq))",
        "CREATE TABLE quarantine (id {id}, digest TEXT NOT NULL UNIQUE, "
        "first_received_at {int} NOT NULL, last_received_at {int} NOT NULL, "
        "times {int} NOT NULL, topic TEXT NOT NULL, store_id TEXT, box_id TEXT, "
        "reason TEXT NOT NULL, detail TEXT NOT NULL, payload {blob} NOT NULL, "
        "payload_size {int} NOT NULL)",
        "CREATE INDEX quarantine_by_time ON quarantine (last_received_at)",
        "CREATE TABLE chain_breaks (box_id TEXT NOT NULL, seq {int} NOT NULL, "
        "event_hash TEXT NOT NULL, fault TEXT NOT NULL, detail TEXT NOT NULL, "
        "detected_at {int} NOT NULL, PRIMARY KEY (box_id, seq, event_hash))",
        "CREATE TABLE conflicts (id {id}, conflict_key TEXT NOT NULL UNIQUE, "
        "kind TEXT NOT NULL, code TEXT, box_id TEXT, seq {int}, detected_at {int} NOT NULL, "
        "updated_at {int} NOT NULL, detail TEXT NOT NULL)",
        "CREATE TABLE presence (box_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, state TEXT, "
        "session {int}, state_at {int}, health TEXT, health_session {int}, "
        "health_measured_at {int}, health_at {int})",
    ),
    (
        "CREATE TABLE fanout_queue (box_id TEXT NOT NULL, seq {int} NOT NULL, "
        "PRIMARY KEY (box_id, seq))",
        "CREATE TABLE code_box_use (code TEXT NOT NULL, box_id TEXT NOT NULL, "
        "store_id TEXT NOT NULL, uses {int} NOT NULL, last_at {int} NOT NULL, "
        "till_id TEXT, transaction_id TEXT, PRIMARY KEY (code, box_id))",
        "CREATE TABLE campaign_box_use (campaign_id TEXT NOT NULL, box_id TEXT NOT NULL, "
        "store_id TEXT NOT NULL, redemptions {int} NOT NULL, discount {int} NOT NULL, "
        "PRIMARY KEY (campaign_id, box_id))",
        "CREATE TABLE delta_heads (store_id TEXT PRIMARY KEY, stream TEXT NOT NULL, "
        "seq {int} NOT NULL, updated_at {int} NOT NULL)",
        "CREATE TABLE deltas (store_id TEXT NOT NULL, seq {int} NOT NULL, "
        "made_at {int} NOT NULL, changes {int} NOT NULL, document {blob} NOT NULL, "
        "PRIMARY KEY (store_id, seq))",
        "CREATE TABLE box_positions (box_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
        "stream TEXT, watermark {int} NOT NULL, said_at {int} NOT NULL)",
        "CREATE TABLE fanout_meta (key TEXT PRIMARY KEY, value {int} NOT NULL)",
        "CREATE TABLE hq_announcements (key_id TEXT PRIMARY KEY, made_at {int} NOT NULL, "
        "document {blob} NOT NULL)",
    ),
    (
        # Version 3, HQ's config pushes (cloud_sync/hq/config_push/): every push, its version
        # HQ-wide (one counter for fleet and stores), its scope ("fleet", or a store's id) and
        # its overlay as JSON text; a box's config is the newest fleet push under the newest
        # push of its store.
        "CREATE TABLE config_pushes (version {int} PRIMARY KEY, store_id TEXT, "
        "pushed_at {int} NOT NULL, overlay TEXT NOT NULL)",
    ),
    (
        # Version 4: receipt coupon issues fanned out to every store's frequency caps. A queue
        # of its own, so the use totals' page never reads past issues (and the reverse).
        "CREATE TABLE issue_queue (box_id TEXT NOT NULL, seq {int} NOT NULL, "
        "PRIMARY KEY (box_id, seq))",
        "CREATE TABLE member_issues (box_id TEXT NOT NULL, till_id TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, store_id TEXT NOT NULL, member_id TEXT NOT NULL, "
        "at {int} NOT NULL, PRIMARY KEY (box_id, till_id, transaction_id))",
        # The snapshot's window and the prune both read by age.
        "CREATE INDEX member_issues_by_time ON member_issues (at)",
    ),
    (
        # Version 5: proximity offers for the member's phone or wallet (member_push/).
        # event_id is the key the receiver deduplicates by; (box_id, seq) joins the event.
        "CREATE TABLE member_push (event_id TEXT PRIMARY KEY, box_id TEXT NOT NULL, "
        "seq {int} NOT NULL, state TEXT NOT NULL, attempts {int} NOT NULL, "
        "due_at {int} NOT NULL, claim TEXT, queued_at {int} NOT NULL, "
        "updated_at {int} NOT NULL, last_status {int}, last_error TEXT, "
        "UNIQUE (box_id, seq))",
        # The worker takes the due pending rows; the status view the newest failures.
        "CREATE INDEX member_push_due ON member_push (due_at) WHERE state = 'pending'",
        "CREATE INDEX member_push_failed ON member_push (updated_at) WHERE state = 'failed'",
        # The results report reads a window of the presence events; the query repeats this
        # WHERE word for word, which is what lets SQLite's planner use a partial index.
        "CREATE INDEX events_presence_by_time ON events (occurred_at) WHERE type IN "
        "('offer.triggered', 'offer.suppressed', 'member.checked_in')",
    ),
    (
        # Version 6: the points ledger (cloud_sync/hq/ledger/). Times are epoch microseconds.
        "CREATE TABLE ledger_events (pos {id}, event_id TEXT NOT NULL UNIQUE, "
        "kind TEXT NOT NULL, at {int} NOT NULL, programme TEXT NOT NULL, "
        "channel TEXT NOT NULL, store_id TEXT, till_id TEXT, campaign_id TEXT, "
        "body TEXT NOT NULL, booked_at {int} NOT NULL, box_id TEXT, box_seq {int})",
        "CREATE TABLE ledger_entries (pos {int} NOT NULL, idx {int} NOT NULL, "
        "programme TEXT NOT NULL, holder TEXT NOT NULL, category TEXT NOT NULL, "
        "side TEXT NOT NULL, points {int} NOT NULL, signed {int} NOT NULL, at {int} NOT NULL, "
        "kind TEXT NOT NULL, channel TEXT NOT NULL, store_id TEXT, till_id TEXT, "
        "campaign_id TEXT, PRIMARY KEY (pos, idx))",
        # A member's page, newest first, is a keyset walk of this index (at, pos, idx).
        "CREATE INDEX ledger_entries_by_holder ON ledger_entries (programme, holder, at, pos, idx)",
        "CREATE TABLE ledger_accounts (programme TEXT NOT NULL, holder TEXT NOT NULL, "
        "category TEXT NOT NULL, balance {int} NOT NULL, opened_at {int}, "
        "last_pos {int} NOT NULL, PRIMARY KEY (programme, holder, category))",
        "CREATE TABLE ledger_daily (programme TEXT NOT NULL, holder TEXT NOT NULL, "
        "category TEXT NOT NULL, day {int} NOT NULL, net {int} NOT NULL, "
        "PRIMARY KEY (programme, holder, category, day))",
        "CREATE TABLE ledger_lines (pos {int} NOT NULL, line {int} NOT NULL, "
        "side TEXT NOT NULL, band TEXT, campaign_id TEXT, points {int} NOT NULL, "
        "PRIMARY KEY (pos, line, side))",
        "CREATE TABLE ledger_marks (programme TEXT NOT NULL, member_id TEXT NOT NULL, "
        "box_id TEXT NOT NULL, seq {int} NOT NULL, PRIMARY KEY (programme, member_id, box_id))",
        "CREATE TABLE points_queue (box_id TEXT NOT NULL, seq {int} NOT NULL, "
        "PRIMARY KEY (box_id, seq))",
        "CREATE TABLE points_refusals (box_id TEXT NOT NULL, seq {int} NOT NULL, "
        "event_id TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, refused_at {int} NOT NULL, "
        "PRIMARY KEY (box_id, seq))",
        "CREATE TABLE points_balance_queue (programme TEXT NOT NULL, member_id TEXT NOT NULL, "
        "PRIMARY KEY (programme, member_id))",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
MIGRATION_LOCK: Final = "storeside:ingest-schema"


def statements(dialect: Dialect, steps: tuple[str, ...]) -> list[str]:
    """``steps`` with the dialect's column types filled in."""
    return [step.format(**TYPES[dialect]) for step in steps]
