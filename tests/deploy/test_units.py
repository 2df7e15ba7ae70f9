"""The shipped systemd units: what the appliance needs of them, checked by systemd itself where
``systemd-analyze`` is installed, and against the agent's own config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from config.load import load_config
from tests.deploy.units import read_unit, value

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
AGENT_UNIT = DEPLOY / "storeside-agent.service"
INGEST_UNIT = DEPLOY / "storeside-hq-ingest@.service"
EXAMPLE = DEPLOY.parent / "config" / "agent.example.toml"


def test_agent_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    unit = read_unit(AGENT_UNIT)
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "on-failure"
    assert service["User"] == "storeside"
    assert service["ExecStart"].split()[0] == "/opt/storeside/venv/bin/edge-agent"
    assert "--config /etc/storeside/agent.toml serve" in service["ExecStart"]
    for key, expected in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
    }.items():
        assert service[key] == expected, key
    assert service["ReadWritePaths"] == "/var/lib/storeside"  # the data folder, nothing else
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_agent_unit_leaves_the_printer_and_readers_their_devices() -> None:
    """PrivateDevices and ProtectClock (whose DeviceAllow=char-rtc closes the device policy)
    would hide USB and serial printers and NFC readers; any DeviceAllow= would too."""
    service = read_unit(AGENT_UNIT)["Service"]
    assert service.get("PrivateDevices", ["no"])[-1] == "no"
    for key in ("ProtectClock", "DeviceAllow", "DevicePolicy", "PrivateUsers"):
        assert key not in service, f"{key} would cut the agent off from its devices"


def test_the_example_config_keeps_its_files_in_the_writable_data_folder() -> None:
    cfg = load_config(EXAMPLE)
    writable = Path(value(read_unit(AGENT_UNIT), "Service", "ReadWritePaths"))
    for path in (cfg.cache.path, cfg.signing.key_path):
        assert Path(path).parent == writable, path
    environment = read_unit(AGENT_UNIT)["Service"]["Environment"]
    assert f"ESCPOS_CAPABILITIES_PICKLE_DIR={writable}/escpos-cache" in environment


def test_ingest_unit_runs_a_named_worker_of_the_shared_group() -> None:
    unit = read_unit(INGEST_UNIT)
    exec_start = value(unit, "Service", "ExecStart")
    assert exec_start.startswith("/opt/storeside/venv/bin/storeside-hq ingest ")
    assert "--client-id hq-ingest-%H-%i" in exec_start  # stable per worker: its session stays
    assert value(unit, "Service", "Restart") == "on-failure"
    assert value(unit, "Service", "ReadWritePaths") == "/var/lib/storeside-hq"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
@pytest.mark.parametrize("unit", [AGENT_UNIT, INGEST_UNIT], ids=lambda p: p.name)
def test_systemd_analyze_verify_finds_nothing_but_the_venv_not_installed_here(
    unit: Path, tmp_path: Path
) -> None:
    target = unit
    if unit.name.endswith("@.service"):  # a template is verified as one instance of it
        target = tmp_path / unit.name.replace("@.", "@1.")
        shutil.copy(unit, target)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip()
        # the one thing a development machine lacks: the box's venv
        and not ("Command /opt/storeside/venv/bin/" in line and "is not executable" in line)
    ]
    assert complaints == [], complaints
