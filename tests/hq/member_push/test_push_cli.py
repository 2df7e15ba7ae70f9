"""``storeside-hq push``: status (counts, last failures, one offer, JSON), retry, a new
secret file, and the refusals of ``push run`` (one line, exit 2) before it starts."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_sync.hq.cli import main
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.member_push import secret_file
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker
from tests.hq.member_push.presence_events import (
    FAR,
    SECRET,
    Clock,
    ingest_all,
    renumbered,
    triggered,
)
from tests.hq.member_push.receiver import Receiver, Reply


def test_status_and_retry(
    ingest: Ingest,
    location: str,
    receiver: Receiver,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    webhook = Webhook(url=receiver.url, secret=SECRET, timeout_s=1)
    offers = [triggered(n, member=f"M{n}", expires=FAR) for n in range(1, 4)]
    sealed = ingest_all(ingest, renumbered(offers))
    receiver.plan.extend([Reply(), Reply(status=401, body=b"bad signature")])
    PushWorker(store=ingest.store, sender=webhook, clock=clock).drain()
    failed = sealed[1].event.event_id
    assert main(["push", "status", "--db", location]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pending\t0\t(in flight 0; oldest queued -)\ndelivered\t2\nfailed\t1\n")
    assert f"\t{failed}\tstore-001\tM2\t1\t401\trefused: HTTP 401: bad signature\n" in out

    assert main(["push", "status", "--db", location, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["pending"], doc["delivered"], doc["failed"]) == (0, 2, 1)
    assert [f["event_id"] for f in doc["last_failures"]] == [failed]

    assert main(["push", "status", "--db", location, "--event", failed]) == 0
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert (lines["state"], lines["attempts"], lines["member_id"]) == ("failed", "1", "M2")
    assert main(["push", "status", "--db", location, "--event", "nope"]) == 2
    assert "no offer 'nope'" in capsys.readouterr().err

    assert main(["push", "retry", "--db", location]) == 2
    assert main(["push", "retry", "--db", location, "--failed"]) == 0
    assert capsys.readouterr().out == "1 failed offer(s) queued again\n"
    assert main(["push", "retry", "--db", location, failed]) == 0
    assert capsys.readouterr().out == "0 failed offer(s) queued again\n"  # pending now
    clock.now = datetime.now(UTC)  # the CLI requeued it due at its (real) now
    PushWorker(store=ingest.store, sender=webhook, clock=clock).drain()
    assert main(["push", "status", "--db", location, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 3


def test_a_new_secret_is_private_and_loads_and_a_loose_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "push.secret"
    assert main(["push", "secret", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = secret_file.load(path)
    assert len(secret) == 64 and secret.decode() not in capsys.readouterr().out
    assert main(["push", "secret", str(path)]) == 2  # never replaced
    assert "refusing to replace" in capsys.readouterr().err
    path.chmod(0o644)
    with pytest.raises(Exception, match="lets others read it; chmod 600"):
        secret_file.load(path)
    short = tmp_path / "short"
    short.write_bytes(b"tiny\n")
    short.chmod(0o600)
    with pytest.raises(Exception, match="a secret of 4 bytes"):
        secret_file.load(short)


def test_push_run_refuses_what_cannot_work_before_it_starts(
    tmp_path: Path, secret_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["push", "run", "--db", str(tmp_path / "events.db"), "--secret-file", str(secret_path)]
    cases = {
        "must be at least 3 x --timeout-s": ["--webhook", "http://x/", "--lease-s", "20"],
        "an http:// or https:// URL": ["--webhook", "ftp://x/"],
        "--cafile goes with an https:// webhook": ["--webhook", "http://x/", "--cafile", "ca"],
        "is below --base-s": ["--webhook", "http://x/", "--cap-s", "1", "--base-s", "5"],
    }
    for why, extra in cases.items():
        assert main([*base, *extra]) == 2, why
        err = capsys.readouterr().err
        assert why in err and len(err.splitlines()) == 1, err
    missing = ["push", "run", "--webhook", "http://x/", "--secret-file", str(tmp_path / "none")]
    assert main(missing) == 2
    assert "no webhook secret" in capsys.readouterr().err
    assert not (tmp_path / "events.db").exists()  # refused before opening the store
