"""The shelf screen hook over real HTTP (a stdlib server on loopback): a trigger in the zone is
posted naming nobody, a failing or absent screen is counted and logged and never raises, and
suppressions and other zones post nothing."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from edge_agent.domain.promotion import Member
from edge_agent.proximity.shelf_screen import ShelfScreens
from hardware.screen.http_screen import HttpShelfScreen
from tests.proximity.factories import member_id, moment, open_cache, presence, service

POLICY = presence().to_policy()
TREATED = member_id("loyal", held_out=False, pol=POLICY)


@contextmanager
def screen_server(status: int) -> Iterator[tuple[str, list[dict[str, str]]]]:
    got: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/show", got
    finally:
        server.shutdown()
        server.server_close()


def _recorded(tmp_path: Path, *, later: timedelta = timedelta()):  # type: ignore[no-untyped-def]
    members = (Member(member_id=TREATED, segment="loyal", tier="gold", proximity_consent=True),)
    cache = open_cache(tmp_path / "cache.db", members=members)
    svc = service(cache, POLICY)
    first = svc.consider(moment(TREATED))
    second = svc.consider(moment(TREATED, at=later or timedelta(minutes=1)))  # capped
    return first + second


async def _settle(screens: ShelfScreens) -> None:
    for _ in range(200):
        if not screens._pending:
            return
        await asyncio.sleep(0.01)


def test_a_trigger_is_shown_naming_nobody_and_a_suppression_is_not(tmp_path: Path) -> None:
    given, capped = _recorded(tmp_path)
    with screen_server(200) as (url, got):

        async def run() -> ShelfScreens:
            screens = ShelfScreens({"coffee": HttpShelfScreen(url), "bakery": HttpShelfScreen(url)})
            screens.on_recorded(given)
            screens.on_recorded(capped)
            await _settle(screens)
            return screens

        screens = asyncio.run(run())
    assert screens.shown == 1 and screens.failed == 0
    (notice,) = got
    assert notice["zone"] == "coffee" and notice["benefit"] == "10% off your whole purchase"
    assert set(notice) == {"zone", "campaign_name", "benefit", "expires_at"}
    assert TREATED not in json.dumps(notice)
    assert given.coupon is not None and given.coupon.code not in json.dumps(notice)


@pytest.mark.parametrize("down", [True, False], ids=["nothing-listening", "answers-500"])
def test_a_failing_screen_is_counted_and_logged_never_raised(
    tmp_path: Path, down: bool, caplog: pytest.LogCaptureFixture
) -> None:
    given, _ = _recorded(tmp_path)

    async def run(url: str) -> ShelfScreens:
        screens = ShelfScreens({"coffee": HttpShelfScreen(url, timeout_s=1.0)})
        screens.on_recorded(given)
        await _settle(screens)
        return screens

    if down:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        screens = asyncio.run(run(f"http://127.0.0.1:{port}/show"))
    else:
        with screen_server(500) as (url, _got):
            screens = asyncio.run(run(url))
    assert (screens.shown, screens.failed) == (0, 1)
    assert "shelf screen in coffee did not take the offer" in caplog.text
