"""The webhook: one signed POST per attempt, with the standard library's urllib.

Theory of operation
-------------------
``Webhook.post`` sends one offer and returns what happened as a value (``retry_policy``'s
``Answer`` or ``NoAnswer``); it never raises for anything the network or the receiver does.
The foreign exceptions are mapped here, at the boundary, and nowhere else:

    urllib.error.HTTPError (a status >= 300, redirects included) ...... Answer(status)
    TimeoutError, also inside URLError (connect or read) .............. NoAnswer "timed out"
    urllib.error.URLError (refused, DNS, TLS) ......................... NoAnswer its reason
    http.client.HTTPException, OSError (reset, a broken status line) .. NoAnswer its class

urllib (not httpx: HQ's extra does not install it, and one request at a time needs no pool)
with two changes to its default opener: redirects are not followed (urllib would turn a
redirected POST into a GET without the body: a 3xx is an Answer, which ``retry_policy`` fails
as a configuration to fix), and HTTPS verifies against the system's CAs or ``cafile``. The
environment's proxy settings (``https_proxy``, ``no_proxy``) apply, as for any urllib client.
``timeout_s`` bounds each blocking socket operation (connect, each read), not the whole
exchange: a receiver trickling a byte every few seconds can hold one attempt longer, so the
worker's lease (``worker.py``) is several timeouts long.

Headers of every request (the receiver's side: ``docs/member-push-webhook.md``):

    Content-Type: application/json
    Idempotency-Key: <event_id>              the same on every attempt of one offer
    Storeside-Signature: t=...,v1=...        ``signature.py``
    Storeside-Attempt: <n>                   1 for the first (informational, not signed)
    User-Agent: storeside-hq/<version>

Of the answer only the first ``READ_BYTES`` are read (what an error page says is in its
first lines; a receiver cannot make HQ buffer megabytes), then the connection is closed; its
excerpt blanks the offer's QR payload and the secret, should the receiver echo either.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from importlib.metadata import version
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.member_push import signature
from cloud_sync.hq.member_push.retry_policy import Answer, NoAnswer, excerpt

READ_BYTES: Final = 4096  # more than any QR payload, so a redaction never meets half of one
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
ATTEMPT_HEADER: Final = "Storeside-Attempt"
MAX_RETRY_AFTER_S: Final = 86_400.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises the 3xx as an HTTPError: an Answer


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One attempt: the body's bytes and what the headers need."""

    event_id: str
    body: bytes
    attempt: int
    hide: tuple[str, ...] = ()  # texts never to repeat from the answer (the QR payload)


class Webhook:
    """The receiver at ``url`` (http:// or https://), signing with ``secret``."""

    def __init__(
        self, *, url: str, secret: bytes, timeout_s: float = 10.0, cafile: Path | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"webhook {url!r}: an http:// or https:// URL with a host")
        if cafile is not None and parts.scheme != "https":
            raise InputError("--cafile goes with an https:// webhook")
        if not secret:
            raise InputError("the webhook secret is empty")
        self.url = url
        self.timeout_s = timeout_s
        self._secret = secret
        # Blanked from what a receiver says back, as the QR payload is: a debugging receiver
        # echoing its configuration must not put HQ's secret into HQ's log.
        self._hidden = (secret.decode("utf-8", errors="replace"),)
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)
        self._agent = f"storeside-hq/{version('storeside')}"

    def __repr__(self) -> str:  # never the secret
        return f"Webhook(url={self.url!r}, timeout_s={self.timeout_s})"

    def post(self, outgoing: Outgoing, *, now: datetime) -> Answer | NoAnswer:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
            self.url,
            data=outgoing.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: outgoing.event_id,
                signature.HEADER: signature.sign(self._secret, outgoing.body, now=now),
                ATTEMPT_HEADER: str(outgoing.attempt),
                "User-Agent": self._agent,
            },
        )
        hide = (*outgoing.hide, *self._hidden)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read(READ_BYTES)
                return Answer(status=response.status, body=excerpt(raw, hide=hide))
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    raw = exc.read(READ_BYTES)
                except (OSError, http.client.HTTPException):
                    raw = b""
            return Answer(
                status=exc.code,
                body=excerpt(raw, hide=hide),
                retry_after_s=_retry_after(exc.headers),
            )
        except TimeoutError:
            return NoAnswer(reason=f"timed out after {self.timeout_s:g} s")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return NoAnswer(reason=f"timed out after {self.timeout_s:g} s")
            return NoAnswer(reason=f"connection failed: {exc.reason}")
        except (http.client.HTTPException, OSError) as exc:
            return NoAnswer(reason=f"connection failed: {type(exc).__name__}: {exc}")


def _retry_after(headers: Message | None) -> float | None:
    """A ``Retry-After`` of delay-seconds (RFC 9110 10.2.3); an HTTP date is ignored (the
    backoff applies), as is anything else."""
    value = None if headers is None else headers.get("Retry-After")
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER_S)
