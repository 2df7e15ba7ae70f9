"""The rotating member identifier: vectors, the reference generator, the box's resolver."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract import rotating_id as rid
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.frames.eddystone import EddystoneEid, EddystoneTlm
from edge_agent.presence.frames.ibeacon import IBeacon
from edge_agent.presence.frames.member import MemberRotatingId
from edge_agent.presence.frames.parse import parse_advertisement, tag_identity
from edge_agent.presence.rotating_id_resolver import (
    EnrolledTag,
    MemberKey,
    Resolved,
    RotatingIdResolver,
    Unresolved,
    UnresolvedReason,
    Via,
)
from reference.member_app import rotating_id as reference
from tests.presence.frames.ad_structures import split
from tests.presence.vectors import make_rotating_id_vectors

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((Path(__file__).parent / "vectors" / "rotating_id.json").read_text())
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
PERIOD = timedelta(seconds=2**rid.DEFAULT_EXPONENT)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYS = [make_rotating_id_vectors.vector_key(n) for n in range(3)]


def members(
    exponent: int = rid.DEFAULT_EXPONENT, *, skew_periods: int = 2, stale_periods: int = 6
) -> RotatingIdResolver:
    keys = [MemberKey(member_id=f"m{n}", key_id=f"k{n}", key=k) for n, k in enumerate(KEYS)]
    return RotatingIdResolver(
        keys, exponent=exponent, skew_periods=skew_periods, stale_periods=stale_periods
    )


def id_at(key: bytes, at: datetime, exponent: int = rid.DEFAULT_EXPONENT) -> bytes:
    return rid.rotating_id(key, rid.counter_at(at, exponent), exponent)


def test_the_vectors_are_current() -> None:
    assert make_rotating_id_vectors.vectors() == VECTORS
    assert DOCUMENT["service_uuid"] == rid.MEMBER_SERVICE_UUID


def test_the_vectors_in_the_developers_doc_are_the_tested_ones() -> None:
    doc = (ROOT / "docs" / "rotating-identifier.md").read_text()
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| 3f47")]
    assert len(rows) >= 3
    for key, at, exponent, _, counter, identifier, service_data in (
        [cell.strip() for cell in row] for row in rows
    ):
        vector = next(
            v for v in VECTORS if (v["key"], v["at"], str(v["exponent"])) == (key, at, exponent)
        )
        assert (str(vector["counter"]), vector["rotating_id"], vector["service_data"]) == (
            counter,
            identifier,
            service_data,
        )
    assert rid.MEMBER_SERVICE_UUID in doc


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['key'][:6]}-K{v['exponent']}")
def test_a_vector_follows_the_documented_construction(vector: dict[str, Any]) -> None:
    # Written out from docs/rotating-identifier.md, not through the contract's code.
    key, exponent = bytes.fromhex(vector["key"]), vector["exponent"]
    counter = vector["unix_seconds"] // 2**exponent
    message = b"storeside/rotating-id/v1" + bytes([exponent]) + counter.to_bytes(8, "big")
    expected = hmac.new(key, message, hashlib.sha256).digest()[:8]
    assert vector["counter"] == counter
    assert vector["rotating_id"] == expected.hex()
    tx = vector["tx_power"].to_bytes(1, "big", signed=True)
    assert vector["service_data"] == (b"\x01" + tx + expected).hex()
    assert rid.rotating_id(key, counter, exponent) == expected


def test_the_reference_generator_prints_the_vectors() -> None:
    for vector in VECTORS[:15]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            reference.main(
                [
                    *("--key", vector["key"], "--at", vector["at"], "--json"),
                    *("--exponent", str(vector["exponent"]), "--tx-power", str(vector["tx_power"])),
                ]
            )
        printed = json.loads(out.getvalue())
        for name in ("counter", "rotating_id", "service_data", "advertising_data"):
            assert printed[name] == vector[name], name


def test_the_reference_generator_runs_as_a_module() -> None:
    vector = VECTORS[0]
    done = subprocess.run(
        [
            *(sys.executable, "-m", "reference.member_app.rotating_id"),
            *("--key", vector["key"], "--at", vector["at"]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"rotating_id: {vector['rotating_id']}" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "reference.member_app.rotating_id", "--key", "00", "--at", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "16 bytes" in bad.stderr


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['key'][:6]}-K{v['exponent']}")
def test_the_box_resolves_every_vector(vector: dict[str, Any]) -> None:
    resolver = members(vector["exponent"])
    at = datetime.fromisoformat(vector["at"])
    answer = resolver.resolve_id(bytes.fromhex(vector["rotating_id"]), at)
    assert answer == Resolved(
        member_id=f"m{KEYS.index(bytes.fromhex(vector['key']))}",
        via=Via.ROTATING_ID,
        key_id=f"k{KEYS.index(bytes.fromhex(vector['key']))}",
        counter=vector["counter"],
        skew_periods=0,
    )


def test_the_advertisement_bytes_pass_the_filter_parse_and_resolve() -> None:
    vector = VECTORS[0]
    ad = split(bytes.fromhex(vector["advertising_data"]))
    assert len(bytes.fromhex(vector["advertising_data"])) <= 31  # a legacy advertisement
    assert BeaconFilter().keep(ad.manufacturer_data, ad.service_data, ad.service_uuids)
    (frame,) = parse_advertisement(ad.manufacturer_data, ad.service_data, ad.service_uuids)
    assert isinstance(frame, MemberRotatingId)
    answer = members().resolve(frame, datetime.fromisoformat(vector["at"]))
    assert isinstance(answer, Resolved)
    assert answer.member_id == "m0"


def test_skew_window_and_replays() -> None:
    resolver = members(skew_periods=2, stale_periods=3)
    for offset in range(-2, 3):
        answer = resolver.resolve_id(id_at(KEYS[1], NOW + offset * PERIOD), NOW)
        assert isinstance(answer, Resolved)
        assert (answer.member_id, answer.skew_periods) == ("m1", offset)
    for offset in (-3, -4, -5):  # heard a few periods ago: a replay, named as such
        answer = resolver.resolve_id(id_at(KEYS[1], NOW + offset * PERIOD), NOW)
        assert answer == Unresolved(UnresolvedReason.STALE)
    for offset in (-6, -50, 3, 10):  # older than the stale band, or from the future
        answer = resolver.resolve_id(id_at(KEYS[1], NOW + offset * PERIOD), NOW)
        assert answer == Unresolved(UnresolvedReason.UNKNOWN)
    assert resolver.resolve_id(bytes(8), NOW) == Unresolved(UnresolvedReason.UNKNOWN)
    assert resolver.resolve_id(b"short", NOW) == Unresolved(UnresolvedReason.UNKNOWN)
    assert resolver.table_size() == 3 * (2 * 2 + 1 + 3)


def test_the_table_follows_time_forward_and_back() -> None:
    resolver = members(skew_periods=1, stale_periods=0)
    heard = id_at(KEYS[2], NOW)
    assert isinstance(resolver.resolve_id(heard, NOW), Resolved)
    assert isinstance(resolver.resolve_id(heard, NOW + PERIOD), Resolved)
    assert resolver.resolve_id(heard, NOW + 2 * PERIOD) == Unresolved(UnresolvedReason.UNKNOWN)
    later = id_at(KEYS[2], NOW + 2 * PERIOD)
    assert isinstance(resolver.resolve_id(later, NOW + 2 * PERIOD), Resolved)
    assert isinstance(resolver.resolve_id(heard, NOW), Resolved)  # the clock stepped back
    assert isinstance(resolver.resolve_id(later, NOW + 1000 * PERIOD), Unresolved)
    assert resolver.table_size() == 3 * 3


def test_key_validity_windows_and_rotation() -> None:
    old, new = KEYS[0], KEYS[1]
    switch = NOW + 10 * PERIOD
    resolver = RotatingIdResolver(
        [
            MemberKey(member_id="ann", key_id="2025", key=old, valid_until=switch),
            MemberKey(member_id="ann", key_id="2026", key=new, valid_from=switch),
        ],
        skew_periods=1,
    )
    assert resolver.resolve_id(id_at(old, NOW), NOW) == Resolved(
        member_id="ann",
        via=Via.ROTATING_ID,
        key_id="2025",
        counter=rid.counter_at(NOW),
        skew_periods=0,
    )
    assert resolver.resolve_id(id_at(new, NOW), NOW) == Unresolved(UnresolvedReason.UNKNOWN)
    after = switch + 3 * PERIOD
    assert resolver.resolve_id(id_at(old, after), after) == Unresolved(UnresolvedReason.UNKNOWN)
    answer = resolver.resolve_id(id_at(new, after), after)
    assert isinstance(answer, Resolved)
    assert answer.key_id == "2026"


def test_a_collision_is_ambiguous_never_a_guess() -> None:
    shared = KEYS[0]
    resolver = RotatingIdResolver(
        [
            MemberKey(member_id="a", key_id="1", key=shared),
            MemberKey(member_id="b", key_id="2", key=shared),
        ]
    )
    answer = resolver.resolve_id(id_at(shared, NOW), NOW)
    assert answer == Unresolved(UnresolvedReason.AMBIGUOUS)


def test_consent_withdrawn_takes_effect_at_the_next_replace() -> None:
    resolver = members()
    heard = id_at(KEYS[0], NOW)
    assert isinstance(resolver.resolve_id(heard, NOW), Resolved)
    resolver.replace([MemberKey(member_id="m1", key_id="k1", key=KEYS[1])], [])
    assert resolver.resolve_id(heard, NOW) == Unresolved(UnresolvedReason.UNKNOWN)


def test_enrolled_tags_and_frames_without_identity() -> None:
    tag = IBeacon(UUID("426c7565-4368-6172-6d42-6561636f6e73"), 3838, 4949, -59)
    identity = tag_identity(tag)
    assert identity is not None
    resolver = RotatingIdResolver(
        [MemberKey(member_id="m0", key_id="k0", key=KEYS[0])],
        tags=[EnrolledTag(member_id="bea", identity=identity)],
    )
    assert resolver.resolve(tag, NOW) == Resolved(member_id="bea", via=Via.TAG)
    stranger = IBeacon(tag.uuid, 3838, 4950, -59)
    assert resolver.resolve(stranger, NOW) == Unresolved(UnresolvedReason.UNKNOWN)
    assert resolver.resolve(EddystoneTlm(3000, 0, 1, 1), NOW) is None
    eid = EddystoneEid(-66, id_at(KEYS[0], NOW))
    answer = resolver.resolve(eid, NOW)
    assert isinstance(answer, Resolved)
    assert answer.member_id == "m0"


def test_bad_settings_and_keys_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="16"):
        RotatingIdResolver([MemberKey(member_id="x", key_id="k", key=b"short")])
    with pytest.raises(ValueError, match="exponent"):
        RotatingIdResolver([], exponent=16)
    with pytest.raises(ValueError, match=">= 0"):
        RotatingIdResolver([], skew_periods=-1)
    with pytest.raises(ValueError, match="naive"):
        rid.counter_at(datetime(2026, 1, 1))  # naive: the point of the test


@given(
    st.binary(min_size=16, max_size=16),
    st.integers(1_500_000_000, 4_000_000_000),
    st.integers(-2, 2),
    st.integers(4, 12),
)
def test_any_key_resolves_within_the_window(
    key: bytes, seconds: int, offset: int, exponent: int
) -> None:
    now = datetime.fromtimestamp(seconds, tz=UTC)
    resolver = RotatingIdResolver(
        [MemberKey(member_id="m", key_id="k", key=key)], exponent=exponent, skew_periods=2
    )
    counter = rid.counter_at(now, exponent) + offset
    answer = resolver.resolve_id(rid.rotating_id(key, counter, exponent), now)
    assert answer == Resolved(
        member_id="m", via=Via.ROTATING_ID, key_id="k", counter=counter, skew_periods=offset
    )


def test_the_next_period_computed_ahead_resolves_as_one_computed_at_the_change() -> None:
    ahead, plain = members(), members()
    start = rid.period_start(rid.counter_at(NOW) + 1)  # the next period begins here
    early = start - timedelta(seconds=30)
    for resolver in (ahead, plain):
        resolver.advance(early)
    assert ahead.upcoming(early, lead_s=10) is None  # not yet: 30 s to go
    soon = start - timedelta(seconds=5)
    entering = ahead.upcoming(soon, lead_s=10)
    assert entering == rid.counter_at(start) + 2  # the skew window's new edge
    assert ahead.install(ahead.precompute(entering))
    assert ahead.upcoming(soon, lead_s=10) is None  # ready: not asked for twice
    later = start + timedelta(seconds=1)
    for key in KEYS:
        for at in (later, later + 2 * PERIOD, later - 2 * PERIOD):
            assert ahead.resolve_id(id_at(key, at), later) == plain.resolve_id(
                id_at(key, at), later
            )
    assert ahead.table_size() == plain.table_size()


def test_entries_computed_for_replaced_keys_are_dropped() -> None:
    resolver = members()
    start = rid.period_start(rid.counter_at(NOW) + 1)
    resolver.advance(start - timedelta(seconds=5))
    entering = resolver.upcoming(start - timedelta(seconds=5), lead_s=10)
    assert entering is not None
    computed = resolver.precompute(entering)
    resolver.replace([], [])  # HQ withdrew every member meanwhile
    assert resolver.install(computed) is False
    later = start + timedelta(seconds=1)
    found = resolver.resolve_id(id_at(KEYS[0], later + 2 * PERIOD), later)
    assert found == Unresolved(UnresolvedReason.UNKNOWN)
