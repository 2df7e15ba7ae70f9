"""``storeside-hq points liability | breakage | report | export``: thin over the finance
functions the tests call. Tables are tab-separated with a header (``--json`` for JSON).

``points`` is a command group other parts add to as well (the ledger's HQ runs):
``points_group`` returns the group's subparsers, making the group only if it is not there,
so the order in which ``cli.py`` adds them does not matter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from cloud_sync.hq.code_io import parse_time
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.finance import breakage, campaign_report, entries_csv, liability
from cloud_sync.hq.finance.face_value import FaceValue
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ledger_api.entries import walk
from cloud_sync.hq.ledger_api.view import RangeError, View

Whole = Callable[[int, int], Callable[[str], int]]


def points_group(sub: Any) -> Any:
    """The subparsers of ``storeside-hq points``, made on first use."""
    existing = sub.choices.get("points")
    if existing is None:
        existing = sub.add_parser("points", help="the points ledger: finance, reports, runs")
        return existing.add_subparsers(dest="points_command", required=True)
    for action in existing._actions:  # argparse keeps a group's subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return action
    return existing.add_subparsers(dest="points_command", required=True)


def _store(args: argparse.Namespace) -> EventStore:
    return open_event_store(args.events_db)


def _range(args: argparse.Namespace, now: datetime) -> tuple[datetime | None, datetime | None]:
    start = None if args.since is None else parse_time(args.since, "--from")
    end = None if args.until is None else parse_time(args.until, "--to")
    del now
    return start, end


def _liability(args: argparse.Namespace, now: datetime) -> int:
    del now
    face = FaceValue(points_per_unit=args.points_per_unit, minor_per_unit=args.minor_per_unit)
    store = _store(args)
    try:
        got = store.read(
            lambda tx: liability.value(tx, programme=args.programme, face=face, seed=args.seed)
        )
    finally:
        store.close()
    if args.json:
        sys.stdout.write(TypeAdapter(liability.Liability).dump_json(got, indent=2).decode() + "\n")
        return 0
    print(f"programme {got.programme}: {got.outstanding} points outstanding, face "
          f"{got.face_minor} minor units, valued {got.value_minor} (seed {got.seed}, "
          f"{got.runs} runs); books: liability {got.liability_account}, breakage "
          f"{got.breakage_account}, members {got.member_balances}")  # fmt: skip
    print("cohort\tmembers\toutstanding\tbreakage_bp\tface_minor\tvalue_minor")
    for c in got.cohorts:
        f = c.forecast
        print(
            f"{f.month}\t{f.members}\t{f.outstanding}\t{f.breakage_bp}\t{c.face_minor}\t{c.value_minor}"
        )
    return 0


def _breakage(args: argparse.Namespace, now: datetime) -> int:
    del now
    store = _store(args)
    try:
        cohorts = store.read(lambda tx: breakage.read_cohorts(tx, programme=args.programme))
    finally:
        store.close()
    got = breakage.forecast(cohorts, seed=args.seed, runs=args.runs)
    if args.json:
        sys.stdout.write(
            TypeAdapter(list[breakage.Forecast]).dump_json(got, indent=2).decode() + "\n"
        )
        return 0
    print("cohort\tmembers\toutstanding\tburned\texpired\tobserved_redemption_bp\t"
          "liability_p95\tbreakage_bp\tmean_breakage_bp")  # fmt: skip
    for f in got:
        observed = "-" if f.observed_redemption_bp is None else f.observed_redemption_bp
        print(f"{f.month}\t{f.members}\t{f.outstanding}\t{f.burned}\t{f.expired}\t{observed}\t"
              f"{f.liability_p95}\t{f.breakage_bp}\t{f.mean_breakage_bp}")  # fmt: skip
    return 0


def _view(args: argparse.Namespace, now: datetime, holder: str | None) -> View:
    start, end = _range(args, now)
    try:
        return View.of(programme=args.programme, holder=holder, now=now, start=start, end=end)
    except RangeError as exc:
        raise InputError(str(exc)) from None


def _report(args: argparse.Namespace, now: datetime) -> int:
    view = _view(args, now, None)
    store = _store(args)
    try:
        got = store.read(
            lambda tx: campaign_report.report(
                tx, programme=args.programme, start=view.start, end=view.end
            )
        )
    finally:
        store.close()
    if args.json:
        sys.stdout.write(
            TypeAdapter(campaign_report.Report).dump_json(got, indent=2).decode() + "\n"
        )
        return 0
    for title, rows in (("campaign", got.campaigns), ("band", got.bands)):
        print(f"{title}\tearned\tearn_reversed\tnet_earned\tburned\tburn_reversed\tnet_burned")
        for t in rows:
            d = asdict(t)
            print(f"{t.key or '-'}\t{d['earned']}\t{d['earn_reversed']}\t{t.net_earned}\t"
                  f"{d['burned']}\t{d['burn_reversed']}\t{t.net_burned}")  # fmt: skip
        print()
    return 0


def _export(args: argparse.Namespace, now: datetime) -> int:
    view = _view(args, now, args.member)
    store = _store(args)
    try:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="")  # noqa: SIM115
        try:
            for line in entries_csv.lines(walk(store, view)):
                out.write(line)
        finally:
            if out is not sys.stdout:
                out.close()
    finally:
        store.close()
    return 0


def add_commands(sub: Any, whole: Whole) -> None:
    """Add ``points liability | breakage | report | export`` to ``storeside-hq``."""
    points = points_group(sub)

    def common(p: argparse.ArgumentParser) -> None:
        ingest_commands.add_db(p)  # ``--db``: the event store, as the other points commands
        p.add_argument("--programme", default="main", help="points programme (default main)")

    p = points.add_parser("liability", help="what the programme owes, valued with breakage")
    common(p)
    p.add_argument("--points-per-unit", type=whole(1, 1_000_000), default=100, help="default 100")
    p.add_argument("--minor-per-unit", type=whole(1, 1_000_000), default=100, help="default 100")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=liability.DEFAULT_SEED)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_liability)

    p = points.add_parser("breakage", help="the breakage forecast per cohort (Monte-Carlo)")
    common(p)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=liability.DEFAULT_SEED)
    p.add_argument("--runs", type=whole(1, 100_000), default=breakage.RUNS, help="default 1000")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_breakage)

    for name, handler, what in (
        ("report", _report, "points earned and burned per campaign and margin band"),
        ("export", _export, "ledger entries as CSV (booking order)"),
    ):
        p = points.add_parser(name, help=what)
        common(p)
        p.add_argument("--from", dest="since", help="ISO 8601 with offset (default: to - 7 days)")
        p.add_argument("--to", dest="until", help="ISO 8601 with offset, exclusive (default now)")
        if name == "export":
            p.add_argument("--member", help="one member (default: every account)")
            p.add_argument("--out", default="-", help="file to write ('-': stdout)")
        else:
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
