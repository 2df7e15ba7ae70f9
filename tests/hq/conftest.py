"""Fixtures for HQ tests: real SQLite files in tmp_path, a fixed clock, campaign factories."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.hq.central_store import CentralStore
from edge_agent.domain.code_format import CodeFormat
from edge_agent.domain.promotion import Promotion
from edge_agent.domain.promotion_codec import promotion_from_dict

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FMT = CodeFormat(prefix="SS")
# random_length 4: 923,521 values a namespace, so duplicates and collisions happen in tests
# of a few thousand codes instead of millions.
SMALL = CodeFormat(prefix="T", namespace_length=2, random_length=4)


def campaign_doc(campaign_id: str = "SPRING", **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": f"{campaign_id} 10% off",
        "benefit": {"kind": "percent_off", "value": 1000},
        "stacking": {"stacking_class": "coupon"},
        "starts_at": (NOW - timedelta(days=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=30)).isoformat(),
    }
    doc.update(changes)
    return doc


def campaign(campaign_id: str = "SPRING", **changes: Any) -> Promotion:
    return promotion_from_dict(campaign_doc(campaign_id, **changes))


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralStore]:
    with CentralStore.create(tmp_path / "hq.db", fmt=FMT) as store:
        store.create_campaign(campaign(), now=NOW)
        yield store


@pytest.fixture
def small(tmp_path: Path) -> Iterator[CentralStore]:
    with CentralStore.create(tmp_path / "small.db", fmt=SMALL) as store:
        store.create_campaign(campaign(), now=NOW)
        yield store


def run_hq(*args: str) -> subprocess.CompletedProcess[str]:
    """`storeside-hq ARGS` in a child process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cloud_sync.hq.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
