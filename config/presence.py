"""In-store presence and proximity offers (issue 10): zones, smoothing, rules. OFF by default.

``to_tracker_config()`` and ``to_policy()`` build the pure engine's settings
(``edge_agent/presence/zones.py``, ``edge_agent/presence/proximity_rules.py``). Cross-field rules
(exit below enter, rules on existing zones, the 1 s decision budget) name the offending path
(``zones[1].exit_dbm``) in their message.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from config.base import Section
from config.receipt_offers import VariantShare
from edge_agent.domain.offer_policy import SEGMENTS
from edge_agent.domain.proximity_campaigns import DEFAULT_CAMPAIGN_IDS
from edge_agent.presence.proximity_rules import (
    ProximityPolicy,
    ProximityRule,
    QuietHours,
)
from edge_agent.presence.zones import RSSI_MAX, RSSI_MIN, TrackerConfig, ZoneSpec

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# The issue: enter/exit decided within 1 s of the smoothed signal crossing its threshold. The
# tracker decides at most confirm + tick_interval_s after the crossing (tracker.py).
DECISION_BUDGET_S = 1.0


class ZoneConfig(Section):
    id: Annotated[str, Field(pattern=_ID, description="Zone id used by rules and events.")]
    sources: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=64)], ...],
        Field(
            min_length=1,
            max_length=64,
            description="Beacons / scanners / boxes whose sightings place a member here; each "
            "source belongs to one zone.",
        ),
    ]
    enter_dbm: Annotated[
        float,
        Field(ge=RSSI_MIN, le=RSSI_MAX, description="Smoothed RSSI at or above this enters."),
    ] = -65.0
    exit_dbm: Annotated[
        float,
        Field(
            ge=RSSI_MIN,
            le=RSSI_MAX,
            description="Smoothed RSSI below this exits; must be below enter_dbm (hysteresis).",
        ),
    ] = -75.0
    enter_confirm_s: Annotated[
        float, Field(ge=0, le=1, description="Time above enter_dbm before Entered.")
    ] = 0.5
    exit_confirm_s: Annotated[
        float, Field(ge=0, le=1, description="Time below exit_dbm before Exited.")
    ] = 0.5
    min_sightings: Annotated[
        int, Field(ge=1, le=20, description="Sightings of a device before it may enter at all.")
    ] = 2
    quiet_s: Annotated[
        float,
        Field(gt=0, le=600, description="No sighting for this long: exited, and forgotten."),
    ] = 10.0
    screen_url: Annotated[
        str | None,
        Field(
            pattern=r"^(https?://[^\s]{1,200}|simulated)$",
            description="A shelf screen shown each offer given here (JSON POST; names nobody); "
            "'simulated' for the twin.",
        ),
    ] = None

    @model_validator(mode="after")
    def _hysteresis(self) -> ZoneConfig:
        if self.exit_dbm >= self.enter_dbm:
            raise ValueError(
                f"exit_dbm ({self.exit_dbm:g}) must be below enter_dbm ({self.enter_dbm:g}): "
                "the gap between them is what stops a member at the edge flapping in and out"
            )
        return self


class QuietHoursConfig(Section):
    start: Annotated[str, Field(pattern=_HHMM, description="Store-local start, HH:MM.")]
    end: Annotated[
        str, Field(pattern=_HHMM, description="Store-local end (exclusive), HH:MM; may wrap.")
    ]

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursConfig:
        if self.start == self.end:
            raise ValueError("start and end are equal: an empty (or a whole-day) window")
        return self

    def to_domain(self) -> QuietHours:
        return QuietHours(start=time.fromisoformat(self.start), end=time.fromisoformat(self.end))


class ProximityRuleConfig(Section):
    id: Annotated[str, Field(pattern=_ID, description="Rule id recorded on every outcome.")]
    enabled: Annotated[bool, Field(description="Consider this rule at all.")] = True
    zone: Annotated[str, Field(pattern=_ID, description="The zone (an id in zones).")]
    min_dwell_s: Annotated[
        float,
        Field(ge=0, le=3600, description="Dwell in the zone before the offer; 0: on entering."),
    ] = 0.0
    segments: Annotated[
        tuple[str, ...],
        Field(
            min_length=1,
            max_length=len(SEGMENTS),
            description="RFM segments targeted (" + ", ".join(SEGMENTS) + ").",
        ),
    ] = SEGMENTS
    campaign_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=64,
            description="Campaign for every targeted segment; unset: each segment's "
            "proximity-<segment> campaign (DOMAIN.md section 3 sizing).",
        ),
    ] = None
    max_per_visit: Annotated[
        int, Field(ge=1, le=10, description="Offers of this rule per member per visit.")
    ] = 1
    max_per_day: Annotated[
        int, Field(ge=1, le=20, description="Offers of this rule per member per store day.")
    ] = 1
    validity_hours: Annotated[
        int, Field(ge=1, le=720, description="How long the minted coupon is valid.")
    ] = 168
    variants: Annotated[
        tuple[VariantShare, ...],
        Field(min_length=1, max_length=8, description="A/B split of the offer."),
    ] = (VariantShare(name="A"),)

    @field_validator("segments")
    @classmethod
    def _known_segments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(SEGMENTS))
        if unknown:
            raise ValueError(f"unknown segments {unknown}; known: {list(SEGMENTS)}")
        return value

    def to_rule(self) -> ProximityRule:
        ids = {s: self.campaign_id or DEFAULT_CAMPAIGN_IDS[s] for s in self.segments}
        return ProximityRule(
            rule_id=self.id,
            zone=self.zone,
            min_dwell_s=self.min_dwell_s,
            segments=frozenset(self.segments),
            campaign_ids=ids,
            max_per_visit=self.max_per_visit,
            max_per_day=self.max_per_day,
            variants=tuple((v.name, v.weight) for v in self.variants),
            validity=timedelta(hours=self.validity_hours),
        )


class ScannerConfig(Section):
    id: Annotated[
        str, Field(pattern=_ID, description="Source id of its sightings (a zone's source).")
    ]
    kind: Annotated[
        Literal["bleak", "simulated"],
        Field(description="bleak: BlueZ through bleak; simulated: replay a scenario file."),
    ] = "bleak"
    adapter: Annotated[
        str, Field(pattern=r"^hci[0-9]{1,2}$", description="BlueZ adapter (bleak).")
    ] = "hci0"
    passive: Annotated[
        bool, Field(description="Passive scanning where BlueZ supports it (bleak).")
    ] = True
    scenario: Annotated[
        str | None,
        Field(min_length=1, description="Scenario file, JSON lines (simulated; see sim_scanner)."),
    ] = None

    @model_validator(mode="after")
    def _scenario(self) -> ScannerConfig:
        if self.kind == "simulated" and self.scenario is None:
            raise ValueError("a simulated scanner needs a scenario file")
        return self


class BeaconsConfig(Section):
    """What the scanner keeps (``frames/beacon_filter.py``) and how identifiers resolve."""

    member_app: Annotated[
        bool, Field(description="Keep the member app's rotating-identifier frames.")
    ] = True
    eddystone_eid: Annotated[
        bool, Field(description="Keep Eddystone-EID frames (phones may send the id in one).")
    ] = False
    ibeacon_uuids: Annotated[
        tuple[UUID, ...],
        Field(max_length=16, description="iBeacon UUIDs of enrolled member beacon tags."),
    ] = ()
    eddystone_namespaces: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[0-9a-fA-F]{20}$")], ...],
        Field(max_length=16, description="Eddystone-UID namespaces of member tags (20 hex)."),
    ] = ()
    rotation_exponent: Annotated[
        int, Field(ge=0, le=15, description="The identifier changes every 2^K seconds.")
    ] = 8
    skew_periods: Annotated[
        int, Field(ge=0, le=4, description="Phone clock skew tolerated, in periods.")
    ] = 2


class ReaderConfig(Section):
    id: Annotated[str, Field(pattern=_ID, description="Reader id, in events and health.")]
    kind: Annotated[
        Literal["nfcpy", "simulated"],
        Field(description="nfcpy: a USB/serial reader; simulated: replay a scenario file."),
    ] = "nfcpy"
    path: Annotated[
        str, Field(min_length=1, max_length=200, description="nfcpy device path (usb, tty:...).")
    ] = "usb"
    scenario: Annotated[
        str | None, Field(min_length=1, description="Scenario file (simulated).")
    ] = None
    till: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=64,
            description="The till this reader stands at: a tap tells the till who is there.",
        ),
    ] = None
    zone: Annotated[
        str | None,
        Field(
            pattern=_ID,
            description="The zone it stands in (the entrance): a tap is a check-in there.",
        ),
    ] = None

    @model_validator(mode="after")
    def _placed(self) -> ReaderConfig:
        if (self.till is None) == (self.zone is None):
            raise ValueError("a reader stands at a till or in a zone: set exactly one")
        if self.kind == "simulated" and self.scenario is None:
            raise ValueError("a simulated reader needs a scenario file")
        return self


class SmoothingConfig(Section):
    time_constant_s: Annotated[
        float,
        Field(
            ge=0.1,
            le=10,
            description="Time constant of the RSSI moving average (time-aware EWMA): larger "
            "is steadier and slower.",
        ),
    ] = 1.0


class PresenceConfig(Section):
    enabled: Annotated[
        bool, Field(description="Track consenting members' presence and give proximity offers.")
    ] = False
    offers_enabled: Annotated[
        bool, Field(description="Proximity offers (off: presence is tracked, no offer).")
    ] = True
    timezone: Annotated[
        str, Field(min_length=1, max_length=64, description="Store time zone (IANA name).")
    ] = "UTC"
    tick_interval_s: Annotated[
        float,
        Field(
            gt=0,
            le=1,
            description="How often the agent ticks the tracker (due enters/exits, quiet "
            "devices, dwell marks).",
        ),
    ] = 0.25
    max_tracked: Annotated[
        int, Field(ge=10, le=100_000, description="(Member, zone) pairs followed at once.")
    ] = 2000
    visit_gap_min: Annotated[
        int,
        Field(ge=1, le=240, description="Minutes out of every zone that end a store visit."),
    ] = 20
    smoothing: SmoothingConfig = SmoothingConfig()
    scanners: Annotated[
        tuple[ScannerConfig, ...],
        Field(max_length=8, description="BLE scanners of this box, each a zone's source."),
    ] = ()
    beacons: BeaconsConfig = BeaconsConfig()
    readers: Annotated[
        tuple[ReaderConfig, ...], Field(max_length=16, description="NFC readers of this box.")
    ] = ()
    till_member_ttl_s: Annotated[
        int,
        Field(
            ge=10,
            le=1800,
            description="How long a tap at a till names the member for that till.",
        ),
    ] = 180
    zones: Annotated[tuple[ZoneConfig, ...], Field(max_length=64, description="Zones.")] = ()
    rules: Annotated[
        tuple[ProximityRuleConfig, ...],
        Field(max_length=64, description="Proximity offer rules (zone + dwell + segments)."),
    ] = ()
    max_per_visit: Annotated[
        int, Field(ge=1, le=10, description="Proximity offers per member per visit, all rules.")
    ] = 1
    max_per_day: Annotated[
        int, Field(ge=1, le=20, description="Proximity offers per member per store day.")
    ] = 2
    quiet_hours: Annotated[
        tuple[QuietHoursConfig, ...],
        Field(max_length=4, description="Store-local windows with no proximity offers."),
    ] = ()
    holdout_percent: Annotated[
        float, Field(ge=5, le=10, description="Holdout share of every cohort (DOMAIN.md: 5-10%).")
    ] = 5.0
    holdout_key: Annotated[
        str,
        Field(
            min_length=8,
            max_length=128,
            description="Key of the holdout/variant hash; the same in every store.",
        ),
    ] = "storeside-proximity-holdout-v1"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> PresenceConfig:
        problems: list[str] = []
        seen_zone: set[str] = set()
        source_zone: dict[str, str] = {}
        for i, zone in enumerate(self.zones):
            if zone.id in seen_zone:
                problems.append(f"zones[{i}].id: zone {zone.id!r} is defined twice")
            seen_zone.add(zone.id)
            for source in zone.sources:
                other = source_zone.setdefault(source, zone.id)
                if other != zone.id or zone.sources.count(source) > 1:
                    problems.append(f"zones[{i}].sources: {source!r} is already in {other!r}")
            for name in ("enter_confirm_s", "exit_confirm_s"):
                confirm = getattr(zone, name)
                if confirm + self.tick_interval_s > DECISION_BUDGET_S + 1e-9:
                    problems.append(
                        f"zones[{i}].{name}: {confirm:g} s + tick_interval_s "
                        f"{self.tick_interval_s:g} s exceeds the {DECISION_BUDGET_S:g} s "
                        "decision budget"
                    )
        sources = set(source_zone)
        for i, scanner in enumerate(self.scanners):
            if scanner.id not in sources:
                problems.append(
                    f"scanners[{i}].id: {scanner.id!r} is no zone's source, so nothing it "
                    "hears places anyone"
                )
        for i, reader in enumerate(self.readers):
            if reader.zone is not None and reader.zone not in seen_zone:
                problems.append(f"readers[{i}].zone: {reader.zone!r} is not a zone")
        if len({s.id for s in self.scanners}) != len(self.scanners):
            problems.append("scanners: two scanners share an id")
        if len({r.id for r in self.readers}) != len(self.readers):
            problems.append("readers: two readers share an id")
        rule_ids: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.zone not in seen_zone:
                problems.append(
                    f"rules[{i}].zone: {rule.zone!r} is not a zone (zones: {sorted(seen_zone)})"
                )
            if rule.id in rule_ids:
                problems.append(f"rules[{i}].id: rule {rule.id!r} is defined twice")
            rule_ids.add(rule.id)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_policy(self) -> ProximityPolicy:
        return ProximityPolicy(
            holdout_key=self.holdout_key.encode(),
            rules=tuple(r.to_rule() for r in self.rules if r.enabled),
            enabled=self.enabled and self.offers_enabled,
            holdout_bp=round(self.holdout_percent * 100),
            max_per_visit=self.max_per_visit,
            max_per_day=self.max_per_day,
            quiet_hours=tuple(q.to_domain() for q in self.quiet_hours),
            tz=ZoneInfo(self.timezone),
        )

    def to_tracker_config(self) -> TrackerConfig:
        """The tracker's zones, each with the dwell marks of the rules on it."""
        policy = self.to_policy()
        return TrackerConfig(
            zones=tuple(
                ZoneSpec(
                    zone_id=z.id,
                    sources=frozenset(z.sources),
                    enter_dbm=z.enter_dbm,
                    exit_dbm=z.exit_dbm,
                    enter_confirm_s=z.enter_confirm_s,
                    exit_confirm_s=z.exit_confirm_s,
                    min_sightings=z.min_sightings,
                    quiet_s=z.quiet_s,
                    dwell_marks_s=policy.marks_for(z.id),
                )
                for z in self.zones
            ),
            time_constant_s=self.smoothing.time_constant_s,
            max_tracks=self.max_tracked,
        )
