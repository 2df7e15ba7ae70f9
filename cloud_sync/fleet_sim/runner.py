"""Run a simulated fleet (in this process, or split over several) and sum up its lag.

Theory of operation
-------------------
``run_part`` drives some boxes of a fleet through one ``FleetLoop``: connect them all (not
timed as load), wait for ``start_at`` if given (so parts in several processes generate load
over the same seconds) and ``settle_s`` (for HQ to take the births), generate events for
``duration_s``, then wait up to ``drain_s`` for HQ to acknowledge what is left. It prints
one line a second and answers a ``PartResult``.

``run_fleet`` runs ``processes`` parts: one in this process, or that many child processes of
``python -m cloud_sync.fleet_sim run --part i/P`` (one core drives a few thousand boxes; the
load model's per-box seeds make the split invisible in what is sent), each writing its
``PartResult`` as JSON, merged here.

Lag, per event: from its creation at the simulated box to the arrival of HQ's ack covering it
(``sim_box.py``). ``summarize`` reports p50, p99 and max over every event of every box, the
per-box p99s, and the events never acknowledged (a loss, or HQ too far behind to finish
within the drain: both mean HQ did not keep up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cloud_sync.fleet_sim.errors import FleetSimError
from cloud_sync.fleet_sim.load_model import LoadModel
from cloud_sync.fleet_sim.mqtt_fleet import Broker, Counts, FleetLoop
from cloud_sync.fleet_sim.sim_box import Identity, SimBox

Print = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    broker: Broker
    model: LoadModel = field(default_factory=LoadModel)
    seed: int = 1
    duration_s: float = 30.0
    drain_s: float = 15.0
    ack_timeout_s: float = 15.0
    health_interval_s: float = 30.0
    batch_events: int = 500
    in_flight: int = 4
    session: int = 1
    connect_timeout_s: float = 120.0
    settle_s: float = 0.0  # connected and idle this long before the load starts
    # The first seconds of load whose events' lag is left out: each box's first batch at a
    # fresh HQ makes its rows there (a fleet's first day, not its steady load).
    warmup_s: float = 0.0


@dataclass(slots=True, kw_only=True)
class PartResult:
    boxes: int
    connect_s: float
    elapsed_s: float  # from the first generated event to the end of the drain
    created: int
    acked: int
    resent: int
    batches: int
    timeouts: int
    reconnects: int
    lags_ms: dict[str, list[float]]  # box id -> lag of each acknowledged event, ms

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        return cls(**json.loads(text))


def run_part(
    fleet: Sequence[Identity],
    indices: Sequence[int],
    settings: Settings,
    *,
    start_at: float | None = None,
    out: Print = print,
    label: str = "",
) -> PartResult:
    boxes = [
        SimBox(fleet[i], index=i, batch_events=settings.batch_events, in_flight=settings.in_flight)
        for i in indices
    ]
    loop = FleetLoop(
        boxes,
        broker=settings.broker,
        model=settings.model,
        seed=settings.seed,
        session=settings.session,
        ack_timeout_s=settings.ack_timeout_s,
        health_interval_s=settings.health_interval_s,
    )
    connect_s = loop.connect_all(timeout_s=settings.connect_timeout_s)
    out(f"{label}{len(boxes)} boxes connected in {connect_s:.1f} s")
    # Births and health of a fleet that connected all at once reach every ingest worker
    # (presence is not shared), a transaction each: a reconnect storm, not the steady load.
    begin = max(start_at or 0.0, time.time() + settings.settle_s)
    while time.time() < begin:
        loop.serve(min(0.05, max(0.0, begin - time.time())))
    last = Counts()

    def tick(elapsed: float, c: Counts) -> None:
        outbox = sum(len(b.outbox) for b in boxes)
        out(
            f"{label}{elapsed:4.0f} s  connected {c.connected}  created {c.created - last.created}"
            f"  sent {c.sent - last.sent}  acked {c.acked - last.acked}"
            f"  resent {c.resent - last.resent}  outbox {outbox}"
        )
        for name in ("created", "sent", "acked", "resent"):
            setattr(last, name, getattr(c, name))

    started = time.monotonic()
    try:
        loop.run(
            duration_s=settings.duration_s,
            drain_s=settings.drain_s,
            tick=tick,
            warmup_s=settings.warmup_s,
        )
        elapsed = time.monotonic() - started
    finally:
        loop.close()
    c = loop.counts
    return PartResult(
        boxes=len(boxes),
        connect_s=connect_s,
        elapsed_s=elapsed,
        created=c.created,
        acked=c.acked,
        resent=sum(b.resent_events for b in boxes),
        batches=c.batches,
        timeouts=c.timeouts,
        reconnects=c.reconnects,
        lags_ms={b.identity.box_id: [round(x * 1000, 2) for x in b.lags] for b in boxes},
    )


def part_indices(count: int, part: int, parts: int) -> list[int]:
    """Box indices of part ``part`` (0-based) of ``parts``: every parts-th box."""
    return list(range(part, count, parts))


def run_fleet(
    users_file: Path,
    fleet: Sequence[Identity],
    settings: Settings,
    *,
    processes: int,
    child_args: Sequence[str],
    out: Print = print,
) -> list[PartResult]:
    """Run ``fleet`` in this process or in ``processes`` children (see the docstring);
    ``child_args`` are the ``run`` options every child gets besides its part."""
    if processes == 1:
        return [run_part(fleet, range(len(fleet)), settings, out=out)]
    # Enough time for every child to import and connect its share before the load starts.
    start_at = time.time() + 3.0 + 0.004 * len(fleet) / processes
    with tempfile.TemporaryDirectory(prefix="fleet-sim-") as tmp:
        children = []
        for i in range(processes):
            result = Path(tmp) / f"part-{i}.json"
            argv = [
                sys.executable,
                "-m",
                "cloud_sync.fleet_sim",
                "run",
                "--users-file",
                str(users_file),
                *child_args,
                "--part",
                f"{i + 1}/{processes}",
                "--start-at",
                f"{start_at:.3f}",
                "--result-json",
                str(result),
            ]
            children.append((subprocess.Popen(argv, env=os.environ.copy()), result))  # noqa: S603
        failed = [i + 1 for i, (child, _) in enumerate(children) if child.wait() != 0]
        if failed:
            raise FleetSimError(f"simulator part(s) {failed} of {processes} failed")
        return [PartResult.from_json(path.read_text()) for _, path in children]


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    boxes: int
    created: int
    acked: int
    unacked: int
    resent: int
    timeouts: int
    reconnects: int
    offered_per_s: float  # events created per second of the load window
    acked_per_s: float  # events acknowledged per second, load window and drain
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    box_p99_median_ms: float  # the median box's own p99
    box_p99_max_ms: float  # the worst box's p99
    boxes_over_1s: int  # boxes whose own p99 exceeds 1 s
    worst_box: str


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest rank of an ascending sample (as ``bench/report.py``)."""
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(results: Sequence[PartResult], *, duration_s: float) -> Summary:
    lags = sorted(x for r in results for box in r.lags_ms.values() for x in box)
    per_box = {box: percentile(sorted(v), 99) for r in results for box, v in r.lags_ms.items() if v}
    box_p99s = sorted(per_box.values())
    created = sum(r.created for r in results)
    acked = sum(r.acked for r in results)
    elapsed = max((r.elapsed_s for r in results), default=duration_s)
    return Summary(
        boxes=sum(r.boxes for r in results),
        created=created,
        acked=acked,
        unacked=created - acked,
        resent=sum(r.resent for r in results),
        timeouts=sum(r.timeouts for r in results),
        reconnects=sum(r.reconnects for r in results),
        offered_per_s=created / duration_s,
        acked_per_s=acked / elapsed if elapsed else 0.0,
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
        lag_max_ms=lags[-1] if lags else float("nan"),
        box_p99_median_ms=percentile(box_p99s, 50),
        box_p99_max_ms=box_p99s[-1] if box_p99s else float("nan"),
        boxes_over_1s=sum(1 for v in box_p99s if v > 1000),
        worst_box=max(per_box, key=lambda b: per_box[b]) if per_box else "-",
    )


def print_summary(s: Summary, out: Print = print) -> None:
    out(
        f"fleet: {s.boxes} boxes; {s.created} events created ({s.offered_per_s:,.0f}/s), "
        f"{s.acked} acknowledged ({s.acked_per_s:,.0f}/s), {s.unacked} never acknowledged; "
        f"{s.resent} sent again after {s.timeouts} ack timeouts, {s.reconnects} reconnects"
    )
    out(
        f"lag (creation to HQ's ack): p50 {s.lag_p50_ms:,.1f} ms  p99 {s.lag_p99_ms:,.1f} ms  "
        f"max {s.lag_max_ms:,.1f} ms"
    )
    out(
        f"per box p99: median {s.box_p99_median_ms:,.1f} ms  worst {s.box_p99_max_ms:,.1f} ms "
        f"({s.worst_box}); {s.boxes_over_1s} boxes over 1 s"
    )
