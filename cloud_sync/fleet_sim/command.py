"""``storeside-hq simulate-fleet``: provision a simulated fleet, then run it against HQ.

``provision`` makes the boxes (``identities.py``): keys registered in HQ's central store
(``--hq-db``), hashes merged into a Mosquitto password file (``--password-file``; reload the
broker after), everything the simulator needs in ``--users-file``. ``run`` connects them to
the broker and publishes the load (``load_model.py``), printing one line a second and the lag
summary at the end (``runner.py``). Also ``python -m cloud_sync.fleet_sim``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from cloud_sync.fleet_sim import identities, runner
from cloud_sync.fleet_sim.load_model import LoadModel
from cloud_sync.fleet_sim.mqtt_fleet import Broker
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest.worker import BrokerAddress
from cloud_sync.hq.store_keys import keys

Whole = Callable[[int, int], Callable[[str], int]]


def _provision(args: argparse.Namespace, now: datetime) -> int:
    with CentralStore.open(Path(args.hq_db)) as central:
        taken = [k.key_id for k in keys(central)]
        fleet = identities.provision(args.boxes, args.stores, taken=taken)
        identities.register_keys(central, fleet, now=now)
    if args.password_file is not None:
        identities.add_to_password_file(Path(args.password_file), fleet)
    identities.write_users_file(Path(args.users_file), fleet)
    print(
        f"{len(fleet)} boxes over {min(args.stores, args.boxes)} stores: keys registered in "
        f"{args.hq_db}, users in {args.users_file}"
        + (f", hashes in {args.password_file} (reload the broker)" if args.password_file else "")
    )
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not > 0")
    return value


def _part(text: str) -> tuple[int, int]:
    part, _, parts = text.partition("/")
    try:
        i, n = int(part), int(parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--part {text!r}: expected I/N, e.g. 1/2") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--part {text!r}: I must be 1..N")
    return i, n


def _settings(args: argparse.Namespace) -> runner.Settings:
    address = BrokerAddress.parse(args.broker)
    if address.tls != (args.cafile is not None) and args.cafile is not None:
        raise InputError("--cafile goes with an mqtts:// broker")
    try:
        model = LoadModel(rate=args.rate, burst_size=args.burst, burst_prob=args.burst_prob)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return runner.Settings(
        broker=Broker(
            host=address.host,
            port=address.port,
            cafile=Path(args.cafile) if args.cafile else None,
        ),
        model=model,
        seed=args.seed,
        duration_s=args.duration,
        drain_s=args.drain,
        ack_timeout_s=args.ack_timeout,
        health_interval_s=args.health_interval,
        batch_events=args.batch_events,
        in_flight=args.in_flight,
        session=args.session or int(time.time()),
        settle_s=args.settle,
        warmup_s=args.warmup,
    )


_CHILD_OPTIONS = (
    "broker", "cafile", "boxes", "rate", "burst", "burst_prob", "duration", "drain", "seed",
    "ack_timeout", "health_interval", "batch_events", "in_flight", "session", "settle", "warmup",
)  # fmt: skip


def _run(args: argparse.Namespace, now: datetime) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = _settings(args)
    fleet = identities.read_users_file(Path(args.users_file))
    if args.boxes is not None:
        if args.boxes > len(fleet):
            raise InputError(f"--boxes {args.boxes}: {args.users_file} holds {len(fleet)}")
        fleet = fleet[: args.boxes]
    print(
        f"simulating {len(fleet)} boxes at {args.rate} events/s each (bursts of {args.burst}, "
        f"p {args.burst_prob}) for {args.duration:.0f} s; seed {args.seed}",
        flush=True,
    )
    if args.part is not None:
        i, n = args.part
        result = runner.run_part(
            fleet,
            runner.part_indices(len(fleet), i - 1, n),
            settings,
            start_at=args.start_at,
            out=lambda line: print(line, flush=True),
            label=f"[{i}/{n}] ",
        )
        if args.result_json:
            Path(args.result_json).write_text(result.to_json())
        if args.start_at is not None:
            return 0  # a child of ``--processes``: the parent sums up every part
        results = [result]
    else:
        opts = {**vars(args), "session": settings.session, "boxes": len(fleet)}
        child_args = [
            a
            for name in _CHILD_OPTIONS
            if opts[name] is not None
            for a in (f"--{name.replace('_', '-')}", str(opts[name]))
        ]
        results = runner.run_fleet(
            Path(args.users_file),
            fleet,
            settings,
            processes=args.processes,
            child_args=child_args,
            out=lambda line: print(line, flush=True),
        )
        if args.result_json:
            merged = runner.PartResult(
                boxes=sum(r.boxes for r in results),
                connect_s=max(r.connect_s for r in results),
                elapsed_s=max(r.elapsed_s for r in results),
                created=sum(r.created for r in results),
                acked=sum(r.acked for r in results),
                resent=sum(r.resent for r in results),
                batches=sum(r.batches for r in results),
                timeouts=sum(r.timeouts for r in results),
                reconnects=sum(r.reconnects for r in results),
                lags_ms={k: v for r in results for k, v in r.lags_ms.items()},
            )
            Path(args.result_json).write_text(merged.to_json())
    summary = runner.summarize(results, duration_s=settings.duration_s)
    runner.print_summary(summary)
    if args.json:
        print(json.dumps(asdict(summary)))
    return 0


def add_command(sub: Any, whole: Whole) -> None:
    """Add ``simulate-fleet`` to ``storeside-hq``'s subparsers."""
    fleet = sub.add_parser(
        "simulate-fleet", help="simulated store boxes publishing signed events to HQ"
    ).add_subparsers(dest="fleet_command", required=True)
    add_subcommands(fleet, whole)


def add_subcommands(fleet: Any, whole: Whole) -> None:
    p = fleet.add_parser("provision", help="make boxes: keys at HQ, broker users, users file")
    p.add_argument("--boxes", type=whole(1, 100_000), required=True)
    p.add_argument("--stores", type=whole(1, 100_000), required=True)
    p.add_argument("--users-file", required=True, help="where the simulator's secrets go")
    p.add_argument("--hq-db", default="hq.db", help="central store to register keys in")
    p.add_argument("--password-file", help="Mosquitto password file to add the boxes to")
    p.set_defaults(handler=_provision)

    p = fleet.add_parser("run", help="connect the boxes and publish their events")
    p.add_argument("--users-file", required=True)
    p.add_argument("--broker", default="mqtts://127.0.0.1:8883", help="mqtt(s)://host:port")
    p.add_argument("--cafile", help="CA certificate of the broker's (mqtts://)")
    p.add_argument("--boxes", type=whole(1, 100_000), help="the first N of the file (all)")
    p.add_argument("--rate", type=_positive, default=1.0, help="events/s per box (1)")
    p.add_argument("--burst", type=whole(1, 1000), default=50, help="burst size (50)")
    p.add_argument("--burst-prob", type=float, default=0.01, help="a cluster is a burst (0.01)")
    p.add_argument("--duration", type=_positive, default=30.0, help="seconds of load (30)")
    p.add_argument("--drain", type=float, default=15.0, help="seconds to wait for acks (15)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--warmup", type=float, default=0.0, help="first seconds of load not in the lag figures"
    )
    p.add_argument(
        "--settle", type=float, default=0.0, help="idle seconds after connecting, before the load"
    )
    p.add_argument("--ack-timeout", type=_positive, default=15.0, help="resend after (15 s)")
    p.add_argument("--health-interval", type=_positive, default=30.0)
    p.add_argument("--batch-events", type=whole(1, 1000), default=500)
    p.add_argument("--in-flight", type=whole(1, 64), default=4)
    p.add_argument("--processes", type=whole(1, 64), default=1, help="split the boxes (1)")
    p.add_argument("--session", type=int, help=argparse.SUPPRESS)
    p.add_argument("--part", type=_part, help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    p.add_argument("--result-json", help="write every box's lags here (JSON)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON too")
    p.set_defaults(handler=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cloud_sync.fleet_sim ...``: ``storeside-hq simulate-fleet ...``."""
    from cloud_sync.hq import cli  # noqa: PLC0415 (at call time: cli imports this module)

    return cli.main(["simulate-fleet", *(sys.argv[1:] if argv is None else argv)])
