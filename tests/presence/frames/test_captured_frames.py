"""The parsers on real advertisement frames from public test suites and device captures.

Each fixture in ``captured_frames.json`` names the repository, path and commit it came from,
and which expected values that source states itself.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from edge_agent.presence.frames.eddystone import EddystoneTlm
from edge_agent.presence.frames.parse import Frame, parse_advertisement
from edge_agent.presence.frames.refusal import Refusal
from tests.presence.frames.ad_structures import Advertisement, split

FIXTURES = json.loads((Path(__file__).parent / "captured_frames.json").read_text())["frames"]


def advertisement(fixture: dict[str, Any]) -> Advertisement:
    if "advertising_data" in fixture:
        return split(bytes.fromhex(fixture["advertising_data"]))
    ad = Advertisement()
    for company, data in fixture.get("manufacturer_data", {}).items():
        ad.manufacturer_data[int(company)] = bytes.fromhex(data)
    for record in fixture.get("manufacturer_records", []):
        raw = bytes.fromhex(record)
        ad.manufacturer_data[int.from_bytes(raw[:2], "little")] = raw[2:]
    for uuid, data in fixture.get("service_data", {}).items():
        ad.service_data[uuid] = bytes.fromhex(data)
    return ad


def described(found: Frame | Refusal) -> dict[str, Any]:
    if isinstance(found, Refusal):
        return {"refusal": found.reason.value, "kind": found.kind.value}
    out: dict[str, Any] = {"frame": type(found).__name__}
    for field in dataclasses.fields(found):
        value = getattr(found, field.name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, UUID):
            value = str(value)
        out[field.name] = value
    if isinstance(found, EddystoneTlm):
        out["temperature_c"] = found.temperature_c
        del out["temperature_raw"]
    return out


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f["name"] for f in FIXTURES])
def test_a_captured_frame_parses_as_its_source_says(fixture: dict[str, Any]) -> None:
    ad = advertisement(fixture)
    found = parse_advertisement(ad.manufacturer_data, ad.service_data, ad.service_uuids)
    assert [described(f) for f in found] == fixture["expect"]


def test_every_fixture_names_its_source() -> None:
    for fixture in FIXTURES:
        assert fixture["repo"].count("/") == 1, fixture["name"]
        assert fixture["path"] and len(fixture["commit"]) == 40, fixture["name"]
        assert fixture["stated"], fixture["name"]
