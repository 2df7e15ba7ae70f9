"""deploy/install.sh run for real into a temporary root (``--root --no-user --no-systemctl``):
a fresh install, then an upgrade over a box that has been configured and has data."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from config.load import load_config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"


def _install(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--no-user", "--no-systemctl"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_unknown_option_is_refused() -> None:
    result = subprocess.run(
        ["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown option --frobnicate" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_then_upgrade_keeps_config_and_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = _install(root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "wrote /etc/storeside/agent.toml" in first.stdout

    etc, data = root / "etc/storeside", root / "var/lib/storeside"
    agent_toml = etc / "agent.toml"
    example = (REPO / "config/agent.example.toml").read_text(encoding="utf-8")
    assert agent_toml.read_text(encoding="utf-8") == example
    assert _mode(etc) == 0o750 and _mode(agent_toml) == 0o640  # tokens' digests, passwords
    assert _mode(data) == 0o750
    assert _mode(data / "escpos-cache") == 0o750  # the unit's ESCPOS_CAPABILITIES_PICKLE_DIR
    unit = root / "etc/systemd/system/storeside-agent.service"
    assert unit.read_bytes() == (REPO / "deploy/storeside-agent.service").read_bytes()
    edge_agent = root / "opt/storeside/venv/bin/edge-agent"
    version = subprocess.run(
        [str(edge_agent), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("edge-agent ")
    # the installed venv stands alone: the agent's wiring imports with none of this checkout
    imported = subprocess.run(
        [str(root / "opt/storeside/venv/bin/python"), "-c", "import edge_agent.wiring as w; "
         "print(w.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert imported.stdout.startswith(str(root / "opt/storeside/venv/")), imported.stdout
    assert not (REPO / "build").exists(), "install.sh built in the checkout"

    # The box is configured and has data; then an upgrade runs.
    configured = example.replace('store_id = "store-001"', 'store_id = "store-042"')
    agent_toml.write_text(configured, encoding="utf-8")
    (data / "cache.db").write_bytes(b"the store's cache")
    (data / "signing.key").write_bytes(b"the store's key")
    (data / "signing.key").chmod(0o600)

    second = _install(root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "kept /etc/storeside/agent.toml" in second.stdout
    assert agent_toml.read_text(encoding="utf-8") == configured
    assert load_config(agent_toml).store.store_id == "store-042"
    assert (etc / "agent.example.toml").read_text(encoding="utf-8") == example
    assert (data / "cache.db").read_bytes() == b"the store's cache"
    assert (data / "signing.key").read_bytes() == b"the store's key"
    assert _mode(data / "signing.key") == 0o600
    subprocess.run([str(edge_agent), "--version"], capture_output=True, check=True)

    # A config the agent would refuse at start fails the install loudly, and stays as it was.
    broken = configured + "\n[store_typo]\nx = 1\n"
    agent_toml.write_text(broken, encoding="utf-8")
    third = _install(root)
    assert third.returncode == 2, third.stdout + third.stderr
    assert "does not pass 'edge-agent config check'" in third.stderr
    assert agent_toml.read_text(encoding="utf-8") == broken
