"""What the tracker knows about the store: its zones, their sources and thresholds. Pure.

``config/presence.py`` validates the operator's settings and builds these; they check again in
``__post_init__`` (a ``ValueError`` here is a programming error, config refuses first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Bluetooth Core Spec Vol 4 Part E 7.7.65.2: RSSI is a signed byte, -127..+20 dBm (127 means
# "not available" and is refused like any value outside the range).
RSSI_MIN = -127
RSSI_MAX = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneSpec:
    """One zone: where a member counts as "here" when one of ``sources`` hears them well."""

    zone_id: str
    sources: frozenset[str]
    enter_dbm: float = -65.0  # smoothed RSSI at or above this starts an enter
    exit_dbm: float = -75.0  # smoothed RSSI below this starts an exit (hysteresis gap)
    enter_confirm_s: float = 0.5  # ...held this long (and for min_sightings) before Entered
    exit_confirm_s: float = 0.5  # ...held this long before Exited
    min_sightings: int = 2  # a track's first sightings only prime the average
    quiet_s: float = 10.0  # no sighting for this long: Exited(QUIET), the track is forgotten
    dwell_marks_s: tuple[float, ...] = ()  # Dwelled is emitted as the stay crosses each

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"zone {self.zone_id!r} has no sources")
        if not RSSI_MIN <= self.exit_dbm < self.enter_dbm <= RSSI_MAX:
            raise ValueError(f"zone {self.zone_id!r}: need {RSSI_MIN} <= exit < enter <= 20 dBm")
        if min(self.enter_confirm_s, self.exit_confirm_s) < 0 or self.quiet_s <= 0:
            raise ValueError(f"zone {self.zone_id!r}: confirm times >= 0 and quiet_s > 0")
        if self.min_sightings < 1:
            raise ValueError(f"zone {self.zone_id!r}: min_sightings must be at least 1")
        marks = self.dwell_marks_s
        if any(m <= 0 for m in marks) or list(marks) != sorted(set(marks)):
            raise ValueError(f"zone {self.zone_id!r}: dwell marks must be positive and ascending")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerConfig:
    zones: tuple[ZoneSpec, ...]
    time_constant_s: float = 1.0  # tau of the EWMA (smoothing.py)
    max_tracks: int = 2000  # (identity, zone) pairs followed at once; more are refused

    def __post_init__(self) -> None:
        if self.time_constant_s <= 0 or self.max_tracks < 1:
            raise ValueError("time_constant_s must be positive and max_tracks at least 1")
        ids = [z.zone_id for z in self.zones]
        if len(ids) != len(set(ids)):
            raise ValueError(f"zone ids must be unique: {ids}")
        seen: dict[str, str] = {}
        for zone in self.zones:
            for source in zone.sources:
                if source in seen:
                    raise ValueError(
                        f"source {source!r} is in zones {seen[source]!r} and {zone.zone_id!r}"
                    )
                seen[source] = zone.zone_id

    def zone_of_source(self) -> Mapping[str, ZoneSpec]:
        return {source: zone for zone in self.zones for source in zone.sources}
