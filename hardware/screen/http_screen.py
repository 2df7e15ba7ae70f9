"""A shelf screen reached over HTTP: each notice is one JSON POST to its URL.

stdlib ``urllib`` in a worker thread (the box has no HTTP client dependency, and a screen is a
few posts an hour), with a short timeout; any answer but 2xx raises, for the caller to log.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from edge_agent.proximity.shelf_screen import ShelfNotice


class ScreenError(Exception):
    """The screen did not take the notice."""


class HttpShelfScreen:
    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    async def show(self, notice: ShelfNotice) -> None:
        await asyncio.to_thread(self._post, json.dumps(notice.to_json()).encode())

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 (the URL is the config's http(s) one)
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            raise ScreenError(f"{self.url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ScreenError(f"{self.url}: {exc}") from None
        if not 200 <= status < 300:
            raise ScreenError(f"{self.url} answered {status}")
