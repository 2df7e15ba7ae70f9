"""``storeside-hq ledger-api`` (serve the ledger API) and ``ledger-api-token`` (make an
operators' token file). ``cloud_sync/hq/cli.py`` calls ``add_commands``.

The server is uvicorn on ``--bind HOST:PORT`` (default loopback: put HQ's TLS proxy in
front for anything else). The token file is read once at start; its tokens are never
printed or logged (uvicorn's access log shows request lines, not headers).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ledger_api import operator_tokens
from cloud_sync.hq.ledger_api.app import create_app

DEFAULT_TOKEN_FILE = "ledger-api.token"  # noqa: S105 (a file name, not a token)


def parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
        raise InputError(f"--bind {text!r}: want HOST:PORT, e.g. 127.0.0.1:8470")
    return host.strip("[]"), int(port)


def _serve(args: argparse.Namespace, now: datetime) -> int:
    del now  # the server asks the clock per request
    host, port = parse_bind(args.bind)
    operators = operator_tokens.load(Path(args.token_file))
    store = open_event_store(args.events)
    try:
        app = create_app(store=store, operators=operators, clock=lambda: datetime.now(UTC))
        print(f"ledger API for {store.location} on http://{host}:{port} (docs: /docs)")
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        store.close()
    return 0


def _token(args: argparse.Namespace, now: datetime) -> int:
    del now
    operator_tokens.create(Path(args.file))
    print(f"wrote a new operator token to {args.file} (mode 0600); give it to the operator")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("ledger-api", help="serve the points ledger API to HQ operators")
    p.add_argument(
        "--events", default="hq-events.db", help="event store: SQLite path or postgresql:// URL"
    )
    p.add_argument("--bind", default="127.0.0.1:8470", help="HOST:PORT (default 127.0.0.1:8470)")
    p.add_argument(
        "--token-file", default=DEFAULT_TOKEN_FILE, help="operators' tokens, one a line (0600)"
    )
    p.set_defaults(handler=_serve)
    p = sub.add_parser("ledger-api-token", help="create an operator token file for ledger-api")
    p.add_argument("--file", default=DEFAULT_TOKEN_FILE, help=f"default {DEFAULT_TOKEN_FILE}")
    p.set_defaults(handler=_token)
