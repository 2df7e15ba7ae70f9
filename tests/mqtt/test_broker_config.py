"""The test broker really runs the shipped config, and the README's way of adding a box works
on a running broker."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.mqtt.broker import (
    ROOT,
    SHIPPED_ACL,
    SHIPPED_CONF,
    BrokerError,
    BrokerFiles,
    MosquittoBroker,
    derive_config,
)
from tests.mqtt.clients import TestClient

REWRITTEN = {
    "listener", "certfile", "keyfile", "cafile", "password_file", "acl_file",
    "persistence_location", "log_dest", "user",
}  # fmt: skip


def _derive(shipped: str, tmp_path: Path, files: BrokerFiles) -> str:
    return derive_config(
        shipped, port=1, files=files, persistence_dir=tmp_path, log_path=tmp_path / "log"
    )


def test_the_derived_config_keeps_every_other_production_line(
    tmp_path: Path, broker_files: BrokerFiles
) -> None:
    shipped = SHIPPED_CONF.read_text()
    derived = _derive(shipped, tmp_path, broker_files).splitlines()

    kept = [
        line
        for line in shipped.splitlines()
        if line.strip() and not line.startswith("#") and line.split()[0] not in REWRITTEN
    ]
    assert "allow_anonymous false" in kept
    assert "persistence true" in kept
    assert all(line in derived for line in kept)
    assert f"acl_file {SHIPPED_ACL}" in derived  # the shipped ACL itself, not a copy


def test_a_shipped_config_that_lost_a_rewritten_setting_breaks_the_tests(
    tmp_path: Path, broker_files: BrokerFiles
) -> None:
    shipped = re.sub(r"^acl_file .*$", "", SHIPPED_CONF.read_text(), flags=re.M)

    with pytest.raises(BrokerError, match="acl_file"):
        _derive(shipped, tmp_path, broker_files)


def _readme_add_box_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- broker-add-box:begin -->\n```sh\n(.*?)```\n<!-- broker-add-box:end -->", text, re.S
    )
    assert found, "README lost its add-a-box block"
    return found.group(1).splitlines()


def test_the_it_person_adds_a_box_as_the_readme_says(
    tmp_path: Path, broker_files: BrokerFiles
) -> None:
    """The README's commands, with this broker's password file for /etc/mosquitto's and a
    SIGHUP (what the Debian unit's ExecReload sends) for ``systemctl reload``."""
    password_file = tmp_path / "storeside.passwd"
    shutil.copy(broker_files.password_file, password_file)
    files = BrokerFiles(tls=broker_files.tls, password_file=password_file)
    broker = MosquittoBroker(directory=tmp_path / "broker", files=files)
    broker.start()
    try:

        def box_017_connects() -> bool:
            client = TestClient(
                port=broker.port,
                ca_cert=files.tls.ca_cert,
                username="box-017",
                password="the-box-password",
                client_id="box-017",
            )
            code = client.connect()
            client.disconnect()
            return not code.is_failure

        assert not box_017_connects()
        for line in _readme_add_box_commands():
            if line.startswith("sudo systemctl reload mosquitto"):
                broker.reload()
                continue
            command = line.removeprefix("sudo ").replace(
                "/etc/mosquitto/storeside.passwd", str(password_file)
            )
            subprocess.run(["bash", "-euc", command], check=True, timeout=10)
        # A reload is asynchronous: Mosquitto re-reads the files in its next loop pass.
        deadline = time.monotonic() + 3
        while not box_017_connects():
            assert time.monotonic() < deadline, broker.log_text()
            time.sleep(0.02)
    finally:
        broker.kill()
