"""What a box starts with and reloads to: HQ's last good overlay over the file's config."""

from __future__ import annotations

import logging

import pytest

from config.model import AgentConfig
from edge_agent.config_push.config_follower import with_kept_overlay
from edge_agent.config_push.kept_push import KeptPush

FILE = AgentConfig.model_validate({"redemption": {"till_failure_limit": 5}})


def test_no_push_runs_the_file() -> None:
    assert with_kept_overlay(FILE, KeptPush()) is FILE


def test_the_last_good_overlay_is_laid_over_the_file() -> None:
    kept = KeptPush(running_version=4, overlay={"redemption": {"hold_seconds": 60}})
    cfg = with_kept_overlay(FILE, kept)
    assert (cfg.redemption.till_failure_limit, cfg.redemption.hold_seconds) == (5, 60)


def test_an_overlay_the_file_no_longer_fits_is_logged_and_the_file_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kept = KeptPush(running_version=4, overlay={"redemption": {"gone_field": 1}})
    with caplog.at_level(logging.WARNING):
        assert with_kept_overlay(FILE, kept) is FILE
    assert "config 4 no longer fits" in caplog.text and "redemption.gone_field" in caplog.text
