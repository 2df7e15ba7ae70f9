"""The ``storeside-hq points`` commands: the till intake, HQ's own ledger events, expiry.

``points post`` books the queued till postings once and exits; ``points run`` is the same as a
long-running service (like ``push run``; SIGTERM stops it after the page in hand). The other
commands each book one HQ event (``operations``) under a deterministic id, so a rerun prints
``already booked`` and changes nothing; ``import`` and ``award`` book in pages of
``--page`` members per transaction; ``expire`` runs ``expiry_run`` in pages likewise. A
refusal (a member short of points, an id booked with other content, an account not open)
exits 2 with its reason, nothing booked. ``points refusals`` lists what the intake refused.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.code_io import parse_time, read_members
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import EventStore, Tx, from_micros, open_event_store
from cloud_sync.hq.ledger import expiry_run, intake, operations
from cloud_sync.hq.ledger.balance_file import read_balances
from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.admission import Admission, Admitted, Overdrawn, Replayed
from edge_agent.domain.points.errors import LedgerError

PAGE: Final = 1_000


def _with_store(args: argparse.Namespace, work: Callable[[EventStore], int]) -> int:
    store = open_event_store(args.events_db)
    try:
        return work(store)
    finally:
        store.close()


def _say(decision: Admission) -> int:
    if isinstance(decision, Overdrawn):
        raise InputError(
            f"{decision.event_id}: refused, {decision.account} holds {decision.balance} and "
            f"the event takes {decision.points} ({decision.shortfall} short)"
        )
    if isinstance(decision, Replayed):
        print(f"already booked\t{decision.event.event_id}")
    else:
        print(f"booked\t{decision.event.event_id}")
    return 0


def _one(args: argparse.Namespace, now: datetime, op: Callable[[Tx, datetime], Admission]) -> int:
    at = now if args.at is None else parse_time(args.at, "--at")  # ``open`` ignores it

    def work(store: EventStore) -> int:
        try:
            return _say(store.run(lambda tx: op(tx, at)))
        except LedgerError as exc:
            raise InputError(str(exc)) from None

    return _with_store(args, work)


def _post(args: argparse.Namespace, now: datetime) -> int:
    done = _with_store(args, lambda s: _tally(intake.post_all(s, limit=args.page)))
    return done


def _tally(t: intake.PostTally) -> int:
    print(
        f"taken {t.taken}\tbooked {t.booked}\treplayed {t.replayed}\trefused {t.refused}\t"
        f"overdrafts {t.overdrafts}\topened {t.opened}"
    )
    return 0


def _run(args: argparse.Namespace, now: datetime) -> int:
    store = open_event_store(args.events_db)
    poster = intake.PointsPoster(store=store, idle_s=args.idle_s, limit=args.page)
    return ingest_commands.run_service(args, "storeside.hq.ledger", poster.run, store)


def _refusals(args: argparse.Namespace, now: datetime) -> int:
    def work(store: EventStore) -> int:
        rows = store.run(
            lambda tx: tx.query(
                "SELECT refused_at, box_id, seq, event_id, reason, detail FROM points_refusals "
                "ORDER BY refused_at DESC, box_id, seq LIMIT ?",
                (args.limit,),
            )
        )
        print("refused_at\tbox_id\tseq\tevent_id\treason\tdetail")
        for at, box, seq, event_id, reason, detail in rows:
            when = from_micros(int(at)).isoformat(timespec="seconds")
            print(f"{when}\t{box}\t{seq}\t{event_id or '-'}\t{reason}\t{detail}")
        return 0

    return _with_store(args, work)


def _open(args: argparse.Namespace, now: datetime) -> int:
    account = MemberAccount(args.programme, args.member, Category(args.category))
    return _one(args, now, lambda tx, at: operations.open_account(tx, account, now=now))


def _import(args: argparse.Namespace, now: datetime) -> int:
    rows = read_balances(Path(args.file))
    at = now if args.at is None else parse_time(args.at, "--at")
    category = Category(args.category)

    def page(tx: Tx, *, chunk: list[tuple[str, int]]) -> list[Admission]:
        return [
            operations.import_balance(
                tx, MemberAccount(args.programme, m, category), p, at=at, now=now
            )
            for m, p in chunk
        ]

    return _paged(args, rows, page, "balances")


def _award(args: argparse.Namespace, now: datetime) -> int:
    if (args.members is None) == (args.segment is None):
        raise InputError("give --members FILE or --segment SEGMENT")
    if args.members is not None:
        members = [m.member_id for m in read_members(Path(args.members))]
    else:
        with CentralStore.open(Path(args.hq_db)) as central:
            members = [
                str(r[0])
                for r in central.conn.execute(
                    "SELECT member_id FROM members WHERE segment = ? ORDER BY member_id",
                    (args.segment,),
                )
            ]
        if not members:
            raise InputError(f"segment {args.segment!r} has no members")
    at = now if args.at is None else parse_time(args.at, "--at")

    def work(store: EventStore) -> int:
        done: list[Admission] = []
        for n, chunk in enumerate(operations.award_chunks(members)):
            try:
                done.append(
                    store.run(
                        partial(
                            operations.bulk_award,
                            programme=args.programme,
                            campaign=args.campaign,
                            award=args.award,
                            chunk=n,
                            members=chunk,
                            points=args.points,
                            category=Category(args.category),
                            at=at,
                            now=now,
                        )
                    )
                )
            except LedgerError as exc:
                raise InputError(f"{exc} ({n} events before it were booked)") from None
        booked = sum(isinstance(d, Admitted) for d in done)
        print(f"awarded {args.points} points to {len(set(members))} members in {len(done)} "
              f"events ({booked} booked now, {len(done) - booked} already booked)")  # fmt: skip
        return 0

    return _with_store(args, work)


def _paged(
    args: argparse.Namespace,
    rows: list[tuple[str, int]],
    page: Callable[..., list[Admission]],
    what: str,
) -> int:
    def work(store: EventStore) -> int:
        booked = replayed = 0
        for start in range(0, len(rows), args.page):
            chunk = rows[start : start + args.page]
            try:
                done = store.run(partial(page, chunk=chunk))
            except LedgerError as exc:
                raise InputError(f"{exc} ({start} rows before this page were booked)") from None
            booked += sum(isinstance(d, Admitted) for d in done)
            replayed += sum(isinstance(d, Replayed) for d in done)
        print(f"{what}: {booked} booked, {replayed} already booked")
        return 0

    return _with_store(args, work)


Handler = Callable[[argparse.Namespace, datetime], int]


def _event(op: Callable[..., Admission], **fields: str) -> Handler:
    """A command booking one ``op`` in the programme at ``--at``; ``fields`` maps each of the
    operation's keywords to the command's argument it comes from."""

    def handler(args: argparse.Namespace, now: datetime) -> int:
        given = {keyword: getattr(args, name) for keyword, name in fields.items()}
        return _one(
            args,
            now,
            lambda tx, at: op(tx, programme=args.programme, at=at, now=now, **given),
        )

    return handler


_transfer = _event(
    operations.transfer, transfer_id="id", sender="sender", recipient="recipient", points="points"
)
_referral = _event(
    operations.referral_award, referral_id="id", member="member", points="points",
    campaign="campaign",
)  # fmt: skip
_referral_return = _event(
    operations.referral_return, referral_id="id", member="member", points="points"
)
_convert = _event(operations.conversion, conversion_id="id", member="member", points="points")
_refund = _event(
    operations.refund_return, refund_id="id", member="member", returned="returned",
    restored="restored",
)  # fmt: skip
_merge = _event(operations.merge, victim="victim", survivor="survivor")


def _expire(args: argparse.Namespace, now: datetime) -> int:
    when = now if args.now is None else parse_time(args.now, "--now")
    validity = timedelta(days=args.validity_days)

    def work(store: EventStore) -> int:
        t = expiry_run.run(store, now=when, validity=validity, limit=args.page)
        print(
            f"members {t.members}\texpired accounts {t.expired_accounts}\tpoints {t.points}\t"
            f"pages {t.pages}"
        )
        return 0

    return _with_store(args, work)


def add_commands(sub: Any, whole: Any) -> None:
    """Add ``points`` to ``storeside-hq``'s subparsers; ``whole`` is the CLI's integer type."""
    group = sub.add_parser("points", help="the points ledger: till intake, HQ events, expiry")
    points = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    count = whole(1, 10**12)

    def cmd(name: str, help_text: str, handler: Any, *, at: bool = True) -> Any:
        p = points.add_parser(name, help=help_text)
        ingest_commands.add_db(p)
        if at:
            p.add_argument("--programme", default="main", help="ledger programme (default main)")
            p.add_argument("--at", help="when it happened, ISO 8601 with offset (default now)")
        p.set_defaults(handler=handler)
        return p

    p = cmd("post", "book the queued till postings, then exit", _post, at=False)
    p.add_argument("--page", type=whole(1, 100_000), default=intake.PAGE, help="per transaction")
    p = cmd("run", "the poster as a service: book till postings as they come", _run, at=False)
    p.add_argument("--page", type=whole(1, 100_000), default=intake.PAGE, help="per transaction")
    p.add_argument("--idle-s", type=ingest_commands.seconds(0.05, 60.0), default=intake.IDLE_S)
    p = cmd("refusals", "till postings refused (and overdrafts booked)", _refusals, at=False)
    p.add_argument("--limit", type=whole(1, 1_000_000), default=100)
    _add_hq_events(cmd, whole, count)


def _add_hq_events(cmd: Any, whole: Any, count: Any) -> None:
    p = cmd("open", "open a member account at zero", _open)
    p.add_argument("member")
    p.add_argument("--category", choices=[c.value for c in Category], default="regular")
    p = cmd("import", "migrated balances: CSV member_id,points, as opening entries", _import)
    p.add_argument("file")
    p.add_argument("--category", choices=[c.value for c in Category], default="regular")
    p.add_argument("--page", type=whole(1, 100_000), default=PAGE, help="members per transaction")
    p = cmd("award", "a campaign's bulk award to a member list or a segment", _award)
    p.add_argument("--campaign", required=True)
    p.add_argument("--award", required=True, help="this award's id within the campaign")
    p.add_argument("--points", type=count, required=True, help="to each member")
    p.add_argument("--members", help="CSV file with a member_id column")
    p.add_argument("--segment", help="every member of this segment in the central store")
    p.add_argument("--hq-db", default="hq.db", help="central store, for --segment")
    p.add_argument("--category", choices=[c.value for c in Category], default="regular")
    p = cmd("transfer", "points from one member to another", _transfer)
    p.add_argument("--id", required=True, help="the transfer's id (a rerun is a no-op)")
    p.add_argument("sender")
    p.add_argument("recipient")
    p.add_argument("points", type=count)
    for name, handler, text in (
        ("referral", _referral, "a referral award"),
        ("referral-return", _referral_return, "a referral award taken back"),
        ("convert", _convert, "promised points become regular points"),
    ):
        p = cmd(name, text, handler)
        p.add_argument("--id", required=True, help="its id (a rerun is a no-op)")
        p.add_argument("member")
        p.add_argument("points", type=count)
        if name == "referral":
            p.add_argument("--campaign")
    p = cmd("refund", "a refund's points: returned (debit) and restored (credit)", _refund)
    p.add_argument("--id", required=True, help="the refund's id (a rerun is a no-op)")
    p.add_argument("member")
    p.add_argument("--returned", type=whole(0, 10**12), default=0)
    p.add_argument("--restored", type=whole(0, 10**12), default=0)
    p = cmd("merge", "customer merge: the victim's balances move to the survivor", _merge)
    p.add_argument("victim")
    p.add_argument("survivor")
    p = cmd("expire", "book expiry of points older than the validity", _expire, at=False)
    p.add_argument("--now", help="the run's time, ISO 8601 with offset (default now)")
    p.add_argument("--validity-days", type=whole(1, 36_600), required=True)
    p.add_argument(
        "--page", type=whole(1, 100_000), default=expiry_run.PAGE, help="members per transaction"
    )
