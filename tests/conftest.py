"""Suite-wide options. Tests that need a physical device (a real Pi, reader or printer) are
marked ``@pytest.mark.device`` and run only with ``--run-device``; without it they are skipped
with a message naming the flag. Nothing else may skip: a missing dependency is an install step."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-device", action="store_true", help="run tests that need a physical device"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-device"):
        return
    skip = pytest.mark.skipif(True, reason="needs a physical device: run with --run-device")
    for item in items:
        if "device" in item.keywords:
            item.add_marker(skip)
