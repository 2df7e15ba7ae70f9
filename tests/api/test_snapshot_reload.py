"""A snapshot loaded by `edge-agent load-snapshot` (another process) while the agent serves
takes effect in the running agent at once: it must not keep serving campaigns from memory."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from edge_agent.domain.promotion import Benefit, BenefitKind, Member
from tests.api.conftest import Server
from tests.api.test_pos_api import body
from tests.cache import factories
from tests.cache.factories import A, code_row, generic_promotion, promotion, write_snapshot


def _load_in_another_process(server: Server, snapshot: Path, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[store]\nstore_id = "{factories.STORE}"\n[cache]\npath = "{server.cache_path}"\n'
    )
    cli = [sys.executable, "-m", "edge_agent.cli.main", "--config", str(config)]
    done = subprocess.run(
        [*cli, "load-snapshot", str(snapshot)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_campaign_changed_at_hq_is_served_as_soon_as_it_is_loaded(
    server: Server, tmp_path: Path
) -> None:
    with server.client() as till:
        before = till.post("/v1/validate", json=body(A)).json()["decisions"][0]
        assert before["discount"] == 500  # the agent has now parsed C1 into memory
        # HQ cuts C1 from 5.00 off to 3.00 off; the store loads the new snapshot beside it.
        snapshot = write_snapshot(
            tmp_path / "snap.db",
            store_id=factories.STORE,
            created_at=(factories.NOW - timedelta(minutes=1)).isoformat(),
            campaigns=[
                promotion(benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=300)),
                generic_promotion(),
            ],
            members=[Member(member_id="M1", segment="loyal")],
            codes=[code_row(A)],
        )
        _load_in_another_process(server, snapshot, tmp_path)
        after = till.post("/v1/validate", json=body(A)).json()["decisions"][0]
    assert after["ok"] is True
    assert after["discount"] == 300
