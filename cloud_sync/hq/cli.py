"""``storeside-hq``: HQ's command line for campaigns, minting, import/export and snapshots.

Exit status: 0 done; 1 done, but some import rows were refused (listed on stderr and in
``--report``); 2 the request was refused (bad option, file or state), with one line on stderr
and nothing changed; 141 (128 + SIGPIPE) the reader of stdout went away (``| head``), quietly.
A traceback means a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn, TextIO

from pydantic import ValidationError
from tqdm import tqdm

from cloud_sync.fleet_sim.command import add_command as add_fleet_sim_command
from cloud_sync.hq import code_batch
from cloud_sync.hq.broker.command import add_broker_command
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.code_io import export_codes, import_codes, parse_time, read_members
from cloud_sync.hq.config_push.commands import add_commands as add_config_commands
from cloud_sync.hq.errors import HqError, InputError, validation_problems
from cloud_sync.hq.fanout import delta_log
from cloud_sync.hq.fanout.commands import add_commands as add_fanout_commands
from cloud_sync.hq.finance.commands import add_commands as add_finance_commands
from cloud_sync.hq.identity_commands import add_commands as add_identity_commands
from cloud_sync.hq.ingest.commands import add_commands as add_ingest_commands
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ledger.commands import add_commands as add_points_commands
from cloud_sync.hq.ledger_api.commands import add_commands as add_ledger_api_commands
from cloud_sync.hq.member_push.commands import add_commands as add_push_commands
from cloud_sync.hq.minting import Issue, mint_anonymous, mint_for_members
from cloud_sync.hq.proximity_results.commands import add_commands as add_results_commands
from cloud_sync.hq.receipt_campaigns import create_proximity_campaigns, create_receipt_campaigns
from cloud_sync.hq.snapshot import write_snapshot
from cloud_sync.hq.store_keys import StoreKey
from cloud_sync.hq.store_keys import keys as store_keys
from cloud_sync.hq.store_keys import register as register_key
from cloud_sync.hq.store_keys import revoke as revoke_key
from config.model import CodeFormatConfig
from edge_agent.domain.code_format import CodeFormat
from edge_agent.domain.promotion_codec import (
    PromotionFormatError,
    campaign_json_schema,
    promotion_from_dict,
)

PROG = "storeside-hq"
MAX_SHOWN = 10  # refused import rows echoed on stderr; --report has them all
Handler = Callable[[argparse.Namespace, datetime], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not usage + message: scripts grep stderr.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@contextlib.contextmanager
def _progress(total: int | None, unit: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    bar = tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=quiet or not sys.stderr.isatty(),
        leave=False,
    )
    try:
        yield bar.update
    finally:
        bar.close()


def _open(args: argparse.Namespace) -> CentralStore:
    return CentralStore.open(Path(args.db))


def _code_format(args: argparse.Namespace) -> CodeFormat:
    """The format the stores' config accepts (one definition), and that HQ can mint in bulk."""
    try:
        fmt = CodeFormatConfig(
            prefix=args.prefix,
            namespace_length=args.namespace_length,
            random_length=args.random_length,
        ).to_format()
    except ValidationError as exc:
        raise InputError(f"code format: {validation_problems(exc)}") from None
    if fmt.random_length > code_batch.MAX_RANDOM_LENGTH:
        raise InputError(
            f"code format: random_length: HQ mints at most {code_batch.MAX_RANDOM_LENGTH} "
            f"random characters (an int64 holds 31**{code_batch.MAX_RANDOM_LENGTH})"
        )
    return fmt


def _init(args: argparse.Namespace, now: datetime) -> int:
    fmt = _code_format(args)
    with CentralStore.create(Path(args.db), fmt=fmt) as central:
        hq = central.hq_namespace(now=now)
    print(f"created {args.db}: codes look like {fmt.prefix}+{hq}+{'X' * fmt.random_length}+check")
    return 0


def _campaign_create(args: argparse.Namespace, now: datetime) -> int:
    path = Path(args.file)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            doc.pop("$schema", None)  # editors' pointer to config/campaign.schema.json
        promotion = promotion_from_dict(doc)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    except (ValueError, PromotionFormatError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{path}: {exc}") from exc
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a campaign") from None
    with _open(args) as central:
        central.create_campaign(promotion, now=now, replace=args.replace)
    print(f"campaign {promotion.campaign_id} {'saved' if args.replace else 'created'}")
    return 0


def _window(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    """The default campaigns' run: ``--starts-at`` (default now) for ``--days``."""
    starts = now if args.starts_at is None else parse_time(args.starts_at, "--starts-at")
    try:
        return starts, starts + timedelta(days=args.days)
    except OverflowError:
        raise InputError("--starts-at: the campaigns would end out of range") from None


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--starts-at", help="ISO 8601 with offset (default: now)")
    p.add_argument(
        "--days", type=_whole(1, MAX_VALID_DAYS), default=90, help="how long they run (default 90)"
    )
    p.add_argument("--replace", action="store_true", help="redefine them if they exist")


def _receipt_campaigns_create(args: argparse.Namespace, now: datetime) -> int:
    starts, ends = _window(args, now)
    with _open(args) as central:
        made = create_receipt_campaigns(
            central,
            now=now,
            starts_at=starts,
            ends_at=ends,
            nudge_categories=frozenset(args.nudge_category),
            replace=args.replace,
        )
    for p in made:
        scope = ", ".join(sorted(p.eligible_categories)) or "whole purchase"
        print(
            f"campaign {p.campaign_id} {'saved' if args.replace else 'created'}: {p.name} "
            f"({scope}), {p.starts_at.isoformat()} to {p.ends_at.isoformat()}"
        )
    print(
        "each issuing store also needs `namespace assign STORE` (its offline minting block), "
        "`keys register STORE -- PUBKEY` and a fresh `snapshot`"
    )
    return 0


def _proximity_campaigns_create(args: argparse.Namespace, now: datetime) -> int:
    starts, ends = _window(args, now)
    with _open(args) as central:
        made = create_proximity_campaigns(
            central, now=now, starts_at=starts, ends_at=ends, replace=args.replace
        )
    for p in made:
        print(
            f"campaign {p.campaign_id} {'saved' if args.replace else 'created'}: {p.name}, "
            f"{p.starts_at.isoformat()} to {p.ends_at.isoformat()}"
        )
    return 0


def _campaign_schema(args: argparse.Namespace, now: datetime) -> int:
    sys.stdout.write(campaign_json_schema())
    return 0


def _campaign_list(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        for p in central.campaigns():
            state = "ended" if p.ends_at <= now else ("withdrawn" if not p.active else "open")
            count = central.count_codes(p.campaign_id)
            print(f"{p.campaign_id}\t{state}\t{count} codes\t{p.ends_at.isoformat()}\t{p.name}")
    return 0


def _campaign_allocate(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        central.set_store_allocation(args.campaign, args.store, args.allocation, now=now)
    print(f"store {args.store} may redeem {args.allocation} of campaign {args.campaign}")
    return 0


def _members_import(args: argparse.Namespace, now: datetime) -> int:
    rows = read_members(Path(args.file))
    with _open(args) as central:
        central.upsert_members(rows, now=now)
    print(f"{len(rows)} members created or updated")
    return 0


def _mint(args: argparse.Namespace, now: datetime) -> int:
    valid_for = None if args.valid_days is None else timedelta(days=args.valid_days)
    issue = Issue(channel=args.channel, variant=args.variant, valid_for=valid_for)
    with _open(args) as central:
        if args.members is not None:
            rows = read_members(Path(args.members))
            with _progress(len(rows), "code", quiet=args.quiet) as bar:
                report = mint_for_members(
                    central,
                    campaign_id=args.campaign,
                    members=rows,
                    now=now,
                    issue=issue,
                    progress=bar,
                )
        else:
            with _progress(args.count, "code", quiet=args.quiet) as bar:
                report = mint_anonymous(
                    central,
                    campaign_id=args.campaign,
                    count=args.count,
                    now=now,
                    issue=issue,
                    progress=bar,
                )
    print(
        f"minted {report.created} codes for {report.campaign_id} "
        f"(namespaces {', '.join(report.namespaces) or '-'}; redrawn: "
        f"{report.duplicates_redrawn} duplicates, {report.collisions_redrawn} collisions)"
    )
    skipped = {
        "already held a code": report.already_held,
        "not in an eligible segment": report.not_eligible,
        "listed twice": report.repeated_rows,
    }
    for why, n in skipped.items():
        if n:
            print(f"skipped {n} members: {why}")
    return 0


def _import(args: argparse.Namespace, now: datetime) -> int:
    with contextlib.ExitStack() as stack:
        # Opened first: a report that cannot be written refuses the import before it stores.
        out = None if args.report is None else stack.enter_context(_output(args.report))
        return _import_into(args, now, out)


def _import_into(args: argparse.Namespace, now: datetime, out: TextIO | None) -> int:
    with _open(args) as central, _progress(None, "row", quiet=args.quiet) as bar:
        report = import_codes(
            central,
            campaign_id=args.campaign,
            path=Path(args.file),
            now=now,
            channel=args.channel,
            variant=args.variant,
            progress=bar,
        )
    refused = [("duplicate", r) for r in report.duplicates] + [
        ("reject", r) for r in report.rejects
    ]
    refused.sort(key=lambda kr: kr[1].line)
    print(
        f"imported {report.imported} codes into {report.campaign_id}; refused "
        f"{len(report.duplicates)} duplicates and {len(report.rejects)} rejects"
    )
    for kind, r in refused[:MAX_SHOWN]:
        print(f"{args.file}:{r.line}: {kind}: {r.code!r}: {r.reason}", file=sys.stderr)
    if len(refused) > MAX_SHOWN:
        print(f"... and {len(refused) - MAX_SHOWN} more", file=sys.stderr)
    if out is not None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("line", "code", "kind", "reason"))
        writer.writerows((r.line, r.code, kind, r.reason) for kind, r in refused)
    return 1 if refused else 0


@contextlib.contextmanager
def _output(name: str) -> Iterator[TextIO]:
    if name == "-":
        yield sys.stdout
        return
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(Path(name).open("w", newline="", encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{name}: {exc.strerror}") from exc
        try:
            yield handle
            handle.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:  # disk full while writing
            raise InputError(f"{name}: {exc.strerror}") from exc


def _export(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        central.campaign(args.campaign)  # refuse before creating the output file
        with _output(args.out) as out:
            count = export_codes(central, campaign_id=args.campaign, out=out)
    if args.out != "-":
        print(f"exported {count} codes of {args.campaign} to {args.out}")
    return 0


def _generic(args: argparse.Namespace, now: datetime) -> int:
    expires = None if args.expires_at is None else parse_time(args.expires_at, "--expires-at")
    with _open(args) as central:
        code = central.create_generic(
            args.campaign,
            args.code,
            now=now,
            channel=args.channel,
            variant=args.variant,
            expires_at=expires,
        )
    print(f"generic code {code} created for {args.campaign}")
    return 0


def _revoke(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        code = central.revoke(args.code, now=now)
    print(f"revoked {code}")
    return 0


def _link(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        code = central.link(args.code, args.member, now=now)
    print(f"{code} linked to member {args.member}")
    return 0


def _snapshot(args: argparse.Namespace, now: datetime) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"{out}: Is a directory")
    follow = None
    if args.events is not None:
        if args.store.strip() == "*":
            raise InputError("--events: a delta stream is one store's, not '*'")
        events = open_event_store(args.events)
        try:
            store_id = args.store.strip()
            follow = events.run(lambda tx: delta_log.follow_point(tx, store_id, now=now))
        finally:
            events.close()
    with _open(args) as central:
        try:
            s = write_snapshot(central, out, args.store, now=now, follow=follow)
        except OSError as exc:  # publishing the finished file: rename, fsync
            raise InputError(f"{out}: {exc.strerror}") from exc
    print(
        f"snapshot for store {s.store_id} written to {s.path}: "
        f"{s.campaigns} campaigns, {s.members} members, {s.codes} codes"
        + ("" if follow is None else f"; follows delta stream {follow.stream} from {follow.seq}")
    )
    return 0


def _namespace_assign(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        print(central.assign_namespace(args.minter, now=now))
    return 0


def _namespace_list(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        for ns in central.namespaces():
            print(
                f"{ns.namespace}\t{ns.minter_id}\t{ns.issued} issued\t{ns.assigned_at.isoformat()}"
            )
    return 0


def _key_line(key: StoreKey) -> str:
    state = "active" if key.revoked_at is None else f"revoked {key.revoked_at.isoformat()}"
    return f"{key.key_id}\t{key.store_id}\t{key.public_key}\t{state}"


def _keys_register(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        key = register_key(central, args.store, args.public_key, now=now)
    print(f"key {key.key_id} registered for store {key.store_id}; it ships in the next snapshots")
    return 0


def _keys_revoke(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        key = revoke_key(central, args.key_id, now=now)
    print(f"key {key.key_id} of store {key.store_id} revoked; stores refuse its coupons from "
          "their next snapshot")  # fmt: skip
    return 0


def _keys_list(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        for key in store_keys(central):
            print(_key_line(key))
    return 0


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high`` (bounds keep SQLite and dates safe)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high:,}, got {value}")
        return value

    return parse


_positive = _whole(1, 10**9)
_count = _whole(0, 10**9)
MAX_MINT = 100_000_000  # per run: 10x the benchmarked 10M, ~8 GB of HQ file
MAX_VALID_DAYS = 3_660  # ten years; DOMAIN.md's coupons live 14-21 days


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Storeside HQ: campaigns, codes and store snapshots.")
    parser.add_argument("--db", default="hq.db", help="HQ database file (default: hq.db)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"{PROG} {version('storeside')}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_setup(sub)
    _add_codes(sub)
    _add_stores(sub)
    add_ingest_commands(sub, _whole)
    add_fanout_commands(sub)
    add_identity_commands(sub, _whole)
    add_config_commands(sub)
    add_push_commands(sub, _whole)
    add_results_commands(sub)
    add_points_commands(sub, _whole)
    add_broker_command(sub)
    add_fleet_sim_command(sub, _whole)
    add_ledger_api_commands(sub)
    add_finance_commands(sub, _whole)
    return parser


_Sub = argparse._SubParsersAction  # argparse's own type for what add_subparsers returns


def _add_setup(sub: _Sub[_Parser]) -> None:
    p = sub.add_parser("init", help="create the HQ database and fix the code format")
    p.add_argument("--prefix", default="SS", help="brand prefix, capitals/digits (default SS)")
    p.add_argument(
        "--namespace-length", type=_whole(0, 99), default=2, help="1..4, default 2 (961 minters)"
    )
    p.add_argument("--random-length", type=_whole(1, 99), default=6, help="6..12, default 6")
    p.set_defaults(handler=_init)

    campaign = sub.add_parser("campaign", help="define and list campaigns").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = campaign.add_parser(
        "create", help="define a campaign from a JSON file (config/campaign.example.json)"
    )
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="redefine an existing campaign")
    p.set_defaults(handler=_campaign_create)
    p = campaign.add_parser("schema", help="print the campaign file's JSON schema")
    p.set_defaults(handler=_campaign_schema)
    p = campaign.add_parser("list", help="campaigns with their state and code counts")
    p.set_defaults(handler=_campaign_list)
    p = campaign.add_parser("allocate", help="set one store's share of a campaign's budget")
    p.add_argument("campaign")
    p.add_argument("store")
    p.add_argument("allocation", type=_whole(0, 10**12))
    p.set_defaults(handler=_campaign_allocate)

    receipt = sub.add_parser(
        "receipt-campaigns", help="the campaigns stores issue next-visit receipt coupons for"
    ).add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = receipt.add_parser(
        "create", help="the five segment campaigns the default [receipt_offers] config names"
    )
    _window_args(p)
    p.add_argument(
        "--nudge-category",
        action="append",
        default=[],
        metavar="CATEGORY",
        help="narrow the loyal and one-timer offers to this category (repeatable)",
    )
    p.set_defaults(handler=_receipt_campaigns_create)

    proximity = sub.add_parser(
        "proximity-campaigns", help="the campaigns in-store proximity offers are given for"
    ).add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = proximity.add_parser(
        "create", help="the five segment campaigns the default [presence] rules name"
    )
    _window_args(p)
    p.set_defaults(handler=_proximity_campaigns_create)

    members = sub.add_parser("members", help="member lists").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = members.add_parser("import", help="create or update members from a CSV file")
    p.add_argument("file")
    p.set_defaults(handler=_members_import)


def _add_codes(sub: _Sub[_Parser]) -> None:
    p = sub.add_parser("mint", help="mint member-bound or anonymous codes for a campaign")
    p.add_argument("--campaign", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--members", metavar="CSV", help="one code per member in this CSV")
    who.add_argument("--count", type=_whole(1, MAX_MINT), help="this many anonymous codes")
    p.add_argument("--channel", default="app", help="issuing channel (default app)")
    p.add_argument("--variant", default="A", help="offer variant (default A)")
    p.add_argument(
        "--valid-days",
        type=_whole(1, MAX_VALID_DAYS),
        help="expiry after issue (default: campaign end)",
    )
    p.set_defaults(handler=_mint)

    p = sub.add_parser("import", help="import brand-supplied codes from a CSV file")
    p.add_argument("--campaign", required=True)
    p.add_argument("file")
    p.add_argument("--channel", default="paper", help="default channel (default paper)")
    p.add_argument("--variant", default="A", help="default variant (default A)")
    p.add_argument("--report", metavar="CSV", help="write every refused row here")
    p.set_defaults(handler=_import)

    p = sub.add_parser("export", help="write a campaign's codes as CSV ('-' for stdout)")
    p.add_argument("--campaign", required=True)
    p.add_argument("out")
    p.set_defaults(handler=_export)

    p = sub.add_parser("generic", help="create a shared literal code, e.g. HOLIMAN100")
    p.add_argument("--campaign", required=True)
    p.add_argument("code")
    p.add_argument("--channel", default="influencer", help="default influencer")
    p.add_argument("--variant", default="A")
    p.add_argument("--expires-at", help="ISO 8601 with offset (default: campaign end)")
    p.set_defaults(handler=_generic)

    p = sub.add_parser("revoke", help="revoke a code")
    p.add_argument("code")
    p.set_defaults(handler=_revoke)

    p = sub.add_parser("link", help="link a physical code to a member's next checkout")
    p.add_argument("code")
    p.add_argument("member")
    p.set_defaults(handler=_link)


def _add_stores(sub: _Sub[_Parser]) -> None:
    p = sub.add_parser("snapshot", help="write a store's snapshot file")
    p.add_argument("--store", required=True, help="store id, or '*' for every store")
    p.add_argument(
        "--events",
        help="event store (SQLite path or postgresql:// URL): cut the snapshot at the store's "
        "delta stream position, so its boxes follow HQ live from there",
    )
    p.add_argument("out")
    p.set_defaults(handler=_snapshot)

    namespace = sub.add_parser("namespace", help="the registry of minting namespaces")
    ns = namespace.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = ns.add_parser("assign", help="a minter's namespace, assigned on first request")
    p.add_argument("minter")
    p.set_defaults(handler=_namespace_assign)
    p = ns.add_parser("list", help="every namespace and its minter")
    p.set_defaults(handler=_namespace_list)

    keys = sub.add_parser("keys", help="stores' coupon signing keys").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = keys.add_parser("register", help="trust a store's public key (from `edge-agent keys show`)")
    p.add_argument("store")
    p.add_argument("public_key", metavar="PUBKEY")
    p.set_defaults(handler=_keys_register)
    p = keys.add_parser("revoke", help="stop every store honouring a key's coupons")
    p.add_argument("key_id", metavar="KEY_ID")
    p.set_defaults(handler=_keys_revoke)
    p = keys.add_parser("list", help="key id, store, public key, state")
    p.set_defaults(handler=_keys_list)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        status = handler(args, datetime.now(UTC))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # `storeside-hq export - | head -1`: the reader has all it wanted. Point stdout at
        # /dev/null so the interpreter's final flush cannot raise again, and end as a process
        # killed by SIGPIPE would (the Python docs' recipe; signal(7)).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except HqError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.OperationalError as exc:  # locked by another HQ tool, disk full...
        print(f"{PROG}: error: database: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing of the unfinished step was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
