"""`storeside-hq hq-key`: HQ's signing key made once, shown, guarded, and rotated by an
announcement the fan-out sends the boxes."""

from __future__ import annotations

from pathlib import Path

from cloud_sync.contract import hq_key
from cloud_sync.hq.fanout import key_announcements
from cloud_sync.hq.ingest.event_store import open_event_store
from edge_agent.domain.token_codec import public_key_from_text
from edge_agent.sync.hq_trust import HqTrust
from tests.hq.conftest import NOW, run_hq


def public_of(stdout: str) -> str:
    return stdout.split('hq_public_key = "')[1].split('"', maxsplit=1)[0]


def test_the_key_is_made_once_shown_and_guarded(tmp_path: Path) -> None:
    key = tmp_path / "hq.key"
    made = run_hq("hq-key", "init", "--key", str(key))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    shown = run_hq("hq-key", "show", "--key", str(key))
    assert public_of(shown.stdout) == public_of(made.stdout)
    assert public_key_from_text(public_of(shown.stdout)) is not None
    again = run_hq("hq-key", "init", "--key", str(key))
    assert again.returncode == 2
    assert "refusing to replace" in again.stderr
    key.chmod(0o644)
    loose = run_hq("hq-key", "show", "--key", str(key))
    assert (loose.returncode, "chmod 600" in loose.stderr) == (2, True)


def test_an_announcement_is_signed_by_the_current_key_and_kept_for_the_fanout(
    tmp_path: Path,
) -> None:
    current, following = tmp_path / "a.key", tmp_path / "b.key"
    pinned = public_of(run_hq("hq-key", "init", "--key", str(current)).stdout)
    run_hq("hq-key", "init", "--key", str(following))
    events = tmp_path / "events.db"
    done = run_hq(
        "hq-key", "announce", "--db", str(events), "--key", str(current),
        "--next", str(following), "--retire-at", "2099-01-01T00:00:00+00:00",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = open_event_store(str(events))
    try:
        (document,) = store.run(key_announcements.documents)
    finally:
        store.close()
    raw = public_key_from_text(pinned)
    assert raw is not None
    trust, announcement = HqTrust.pinned(raw).accept(document, now=NOW)
    assert announcement.retires is not None
    assert announcement.retire_at is not None
    assert len(trust.announced) == 1
    assert hq_key.encode(announcement)  # a well-formed announcement, as the box decodes it
    past = run_hq(
        "hq-key", "announce", "--db", str(events), "--key", str(current),
        "--next", str(following), "--retire-at", "2000-01-01T00:00:00+00:00",
    )  # fmt: skip
    assert (past.returncode, "not in the future" in past.stderr) == (2, True)
