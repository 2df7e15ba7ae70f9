"""The presence parts as supervised device tasks: each scanner and its feed, each NFC reader, the
tracker's tick, the offers' delivery, the taps' handling and the identities' follower
(``proximity/presence_loop.py``).

All are ``Kind.DEVICE``: a failing scanner or a bug in the presence path is restarted with
backoff and shown in health, and the tills never notice. Scanners report BlueZ trouble in their
own state and recover by themselves (``ble_port.py``); a task ending here is a bug.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.presence import PresenceConfig
from edge_agent.presence.ble_port import BeaconScanner
from edge_agent.presence.nfc_port import TagReader
from edge_agent.proximity.presence_loop import PollIdentities, PresenceLoop, ReaderPlace
from edge_agent.proximity.shelf_screen import ShelfScreens
from edge_agent.proximity.till_members import TillMembers
from edge_agent.runtime.supervisor import Kind, TaskSpec

IDENTITIES_POLL_S = 1.0  # how soon a delta's new or withdrawn identities reach the resolver


@dataclass(slots=True, kw_only=True)
class Presence:
    """The running presence parts of one agent."""

    cfg: PresenceConfig
    loop: PresenceLoop
    till_members: TillMembers
    scanners: Mapping[str, BeaconScanner] = field(default_factory=dict)
    readers: Mapping[str, tuple[ReaderPlace, TagReader]] = field(default_factory=dict)
    poll_identities: PollIdentities | None = None
    shelf: ShelfScreens = field(default_factory=lambda: ShelfScreens({}))

    def tasks(self) -> list[TaskSpec]:
        loop = self.loop
        specs: list[TaskSpec] = []
        for source, scanner in self.scanners.items():
            specs.append(TaskSpec(name=f"ble:{source}", kind=Kind.DEVICE, run=scanner.run))
            specs.append(
                TaskSpec(
                    name=f"presence_feed:{source}",
                    kind=Kind.DEVICE,
                    run=functools.partial(loop.feed, source, scanner),
                )
            )
        for reader_id, (place, reader) in self.readers.items():
            specs.append(
                TaskSpec(
                    name=f"nfc:{reader_id}",
                    kind=Kind.DEVICE,
                    run=functools.partial(reader.run, functools.partial(loop.tap_heard, place)),
                    stop=reader.stop,
                )
            )
        if self.readers:
            specs.append(TaskSpec(name="nfc_taps", kind=Kind.DEVICE, run=loop.taps_forever))
        every = self.cfg.tick_interval_s
        specs.append(
            TaskSpec(name="presence_tick", kind=Kind.DEVICE, run=lambda: loop.tick_forever(every))
        )
        specs.append(TaskSpec(name="proximity_offers", kind=Kind.DEVICE, run=loop.deliver_forever))
        poll = self.poll_identities
        if poll is not None:
            specs.append(
                TaskSpec(
                    name="presence_identities",
                    kind=Kind.DEVICE,
                    run=lambda: loop.follow_identities(poll, IDENTITIES_POLL_S),
                )
            )
        return specs

    def take_policy(self, cfg: PresenceConfig) -> None:
        """A reconfigure changed the offers' policy (``config.diff.PRESENCE_LIVE``)."""
        self.cfg = cfg
        self.loop.take_policy(cfg.to_policy(), cfg.to_tracker_config())

    def summary(self) -> str | None:
        """One clause per scanner and reader, for the health HQ's fleet view shows (``ble
        coffee-scanner scanning; nfc till-1-reader absent: not_found``); None: no devices."""
        clauses = [
            f"ble {source} {s.state.phase.value}"
            + (f": {s.state.reason}" if s.state.reason else "")
            for source, s in self.scanners.items()
        ]
        for reader_id, (_, reader) in self.readers.items():
            health = reader.health()
            clauses.append(
                f"nfc {reader_id} {health.state.value}"
                + (f": {health.last_error}" if health.last_error else "")
            )
        return "; ".join(clauses) or None

    def state(self) -> dict[str, Any]:
        """For ``/v1/health``: counts only, never a member or a device."""
        return {
            "scanners": {
                source: {
                    "phase": s.state.phase.value,
                    "reason": s.state.reason,
                    "mode": s.state.mode,
                    "adverts_kept": s.state.adverts_kept,
                    "dropped_queue_full": s.state.dropped_queue_full,
                    "restarts": s.state.restarts,
                    "resets": s.state.resets,
                }
                for source, s in self.scanners.items()
            },
            "readers": {
                reader_id: {
                    "state": h.state.value,
                    "taps": h.taps,
                    "reads_lost": h.reads_lost,
                    "disconnects": h.disconnects,
                    "last_error": h.last_error,
                }
                for reader_id, h in ((i, r.health()) for i, (_, r) in self.readers.items())
            },
            "present": {zone: len(ids) for zone, ids in self.loop.tracker.present().items()},
            "identities_version": self.loop.identities_version,
            "shelf_screens": {"shown": self.shelf.shown, "failed": self.shelf.failed},
            "counts": dict(self.loop.counts),
        }
