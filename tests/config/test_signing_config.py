"""The [signing] section: defaults, bounds, unknown keys."""

from __future__ import annotations

import pytest

from config.load import ConfigError, parse_config
from config.model import AgentConfig


def test_defaults() -> None:
    cfg = AgentConfig()
    assert cfg.signing.key_path == "var/store-signing.key"
    assert cfg.signing.trust_own_key is True


def test_values_are_read() -> None:
    cfg = parse_config({"signing": {"key_path": "/etc/storeside/k.pem", "trust_own_key": False}})
    assert cfg.signing.key_path == "/etc/storeside/k.pem"
    assert cfg.signing.trust_own_key is False


@pytest.mark.parametrize("section", [{"key_path": ""}, {"key_file": "x"}])
def test_bad_values_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_config({"signing": section})
