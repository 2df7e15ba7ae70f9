"""``storeside-hq proximity-results``: ``report.read`` over a window, as text or JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from cloud_sync.hq.code_io import parse_time
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.proximity_results import report
from cloud_sync.hq.proximity_results.report import ProximityResults


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "-"


def _results(args: argparse.Namespace, now: datetime) -> int:
    until = now if args.until is None else parse_time(args.until, "--until")
    since = until - timedelta(days=7) if args.since is None else parse_time(args.since, "--since")
    if since >= until:
        raise InputError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    store = open_event_store(args.events_db)
    try:
        results = report.read(store, since=since, until=until, store_id=args.store)
    finally:
        store.close()
    if args.json:
        adapter = TypeAdapter(ProximityResults)
        sys.stdout.write(adapter.dump_json(results, indent=2).decode() + "\n")
        return 0
    scope = "every store" if args.store is None else f"store {args.store}"
    print(f"proximity results, {scope}, {since.isoformat()} to {until.isoformat()}")
    print("campaign\trule\ttriggered\theld_out\tdelivered\tpush_failed\tsuppressed")
    for r in results.rules:
        print(
            f"{r.campaign_id or '-'}\t{r.rule_id or '-'}\t{r.triggered}\t{r.held_out}\t"
            f"{r.delivered}\t{r.push_failed}\t{_counts(r.suppressed)}"
        )
    print("\nstore\tcheck_ins\tmembers\thow")
    for c in results.check_ins:
        print(f"{c.store_id}\t{c.check_ins}\t{c.members}\t{_counts(c.by_how)}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``proximity-results`` to ``storeside-hq``'s subparsers."""
    p = sub.add_parser(
        "proximity-results",
        help="per campaign and rule: triggered, held out, suppressed by reason; check-ins",
    )
    ingest_commands.add_db(p)
    p.add_argument("--since", help="ISO 8601 with offset: occurred at or after (default: 7 days)")
    p.add_argument("--until", help="ISO 8601 with offset: occurred before (default: now)")
    p.add_argument("--store", help="one store (default: every store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_results)
