"""HQ's config push over a real Mosquitto (the shipped config and ACL) to a real agent process
(``edge-agent serve``), driven by the real ``storeside-hq config push`` and ``status``: a
config applied live (a new till's token works at once), one signed by another key and one not
signed at all refused, an old one replayed refused (also after the agent restarts), a typo'd
key and an out-of-range value rejected with their paths, a restart-needing field named, and a
printer nobody answers on rolled back. Every outcome is read from the box's retained result.

Run with PYTHONPATH set to the checkout when the virtualenv's editable install points at
another one: the agent is a separate process and imports what the environment says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import topics
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.config_result import Outcome
from cloud_sync.contract.topics import Channel
from edge_agent.api.auth import new_token
from tests.agent_process import free_port
from tests.config_push.agent_box import BOX, STORE, Box, Hq, Watcher, signed, tills
from tests.mqtt.fixtures import ClientFactory


def test_config_push_end_to_end(
    box: Box, hq: Hq, mqtt_client: ClientFactory, hq_key: tuple[Path, Ed25519PrivateKey],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    token2 = new_token()
    till2 = tills(("till-1", box.token), ("till-2", token2))
    assert box.answer_to(token2) == 401
    seen = Watcher(mqtt_client, "hq-config", Channel.CONFIG_RESULT)
    if True:
        # 1. Applied live: the new till's token works at once, no restart.
        assert hq.push(till2) == 0
        applied = seen.result()
        assert (applied.outcome, applied.version, applied.running) == (Outcome.APPLIED, 1, 1)
        assert box.answer_to(token2) == 200

        # 2. HQ's CLI refuses a typo'd key and an out-of-range value itself: exit 2, all paths.
        capsys.readouterr()
        assert hq.push("[redemption]\ntill_failure_limt = 3\nhold_seconds = 1\n") == 2
        err = capsys.readouterr().err
        assert "redemption.till_failure_limt" in err and "redemption.hold_seconds" in err

        # 3. The box is the authority: the same mistakes signed by HQ are rejected there too.
        publisher = mqtt_client("hq-config", client_id="forger")
        publisher.connect()
        where = topics.topic(STORE, BOX, Channel.CONFIG)
        now = datetime.now(UTC)

        def doc(version: int, overlay: dict[str, object]) -> ConfigDocument:
            return ConfigDocument(
                store_id=STORE,
                version=version,
                fleet_version=None,
                store_version=version,
                issued_at=now,
                overlay=overlay,
            )

        key = hq_key[1]
        bad = {"redemption": {"till_failure_limt": 3, "hold_seconds": 1}}
        publisher.publish(where, signed(doc(10, bad), key), qos=1, retain=True)
        rejected = seen.result()
        assert rejected.outcome is Outcome.REJECTED and rejected.running == 1
        assert {e.path for e in rejected.errors} == {
            "redemption.till_failure_limt", "redemption.hold_seconds"
        }  # fmt: skip

        # 4. Signed by another key, or not signed at all (a junk envelope): rejected.
        other = Ed25519PrivateKey.generate()
        publisher.publish(where, signed(doc(11, {}), other), qos=1, retain=True)
        forged = seen.result()
        assert forged.outcome is Outcome.REJECTED and forged.version is None
        assert "unknown_key" in forged.errors[0].message
        publisher.publish(where, json.dumps({"overlay": {}}).encode(), qos=1, retain=True)
        unsigned = seen.result()
        assert unsigned.outcome is Outcome.REJECTED and "malformed" in unsigned.errors[0].message

        # 5. An old config replayed, signed by HQ: refused as not newer.
        publisher.publish(where, signed(doc(1, {}), key), qos=1, retain=True)
        replay = seen.result()
        assert replay.outcome is Outcome.REJECTED
        assert "replay: version 1 is not newer than 10" in replay.errors[0].message

        # 6. A field that needs a restart is named, nothing applied.
        publisher.publish(where, signed(doc(12, {"api": {"port": 1}}), key), qos=1, retain=True)
        restart = seen.result()
        assert restart.outcome is Outcome.NEEDS_RESTART
        assert [e.path for e in restart.errors] == ["api.port"]

        # 7. A printer nobody answers on: applied, the health check fails, rolled back.
        closed = free_port()
        printer = {"printer": {"kind": "network", "host": "127.0.0.1", "port": closed,
                               "timeout_s": 1}}  # fmt: skip
        publisher.publish(where, signed(doc(13, printer), key), qos=1, retain=True)
        rolled = seen.result()
        assert rolled.outcome is Outcome.ROLLED_BACK and rolled.running == 1
        assert rolled.errors[0].path == "printer"
        assert box.answer_to(token2) == 200  # the last good config runs

        # 8. After a restart: HQ's last good config still runs, an old one is still a replay.
        box.stop()
        box.start()
        assert box.answer_to(token2) == 200
        replay_again = signed(doc(2, {}), key)
        publisher = mqtt_client("hq-config", client_id="forger-2")
        publisher.connect()
        publisher.publish(where, replay_again, qos=1, retain=True)
        while (after := seen.result()).version != 2:  # the last result again, after the connect
            assert after.outcome is Outcome.ROLLED_BACK
        assert "version 2 is not newer than 13" in str(after.errors[0])

    # 9. storeside-hq config status reads the box's retained word.
    capsys.readouterr()
    assert hq.status() == 0
    out = capsys.readouterr().out
    assert f"{STORE}\t{BOX}\t1\trejected\t2\t" in out
