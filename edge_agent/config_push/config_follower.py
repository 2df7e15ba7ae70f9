"""The box taking the config HQ pushes: check it, apply it live, check the box, keep or undo.

Theory of operation
-------------------
The outbox pump owns the box's MQTT connection and hands every message on the box's
``config`` topic here (``on_config``, on the agent's loop). The follower is the agent's, not
the pump's: a config that changes ``[sync]`` restarts the pump (``Agent._restart_sync``), the
very task that received it, so the work runs in a task of its own (``run``), one config at a
time, and the pump only delivers payloads and, after every connect, publishes the last result
again (``result_payload``). For each payload, in order, the first refusal ends it:

1. ``HqTrust.open`` with kind ``config``: the pinned ``[sync] hq_public_key`` and the keys HQ
   announced since (the cache's ``hq_keys``); unsigned, another key, another kind: rejected.
2. ``config_document.decode``, and the store is the box's own: rejected.
3. the version: the same document as the last one seen (the config topic is retained, so it
   comes again at every connect) is ignored without an answer; any other version at or below
   the newest seen is a replay and is rejected. The newest seen is kept in the cache *before*
   anything is applied, so a config that crashes the agent is not taken again at its restart.
4. ``config/overlay.check`` over the file's config: rejected with every field error, or
   needs_restart naming each field; an overlay that changes nothing is unchanged.
5. ``apply`` (``Agent.reconfigure``): refused (a printer driver refusing its settings) is
   rejected; applied goes on to
6. ``health`` (``health_check.check_health``): a failure applies the config that ran before
   again (the last good one) and answers rolled_back with what failed.

Only an applied (or unchanged) config becomes the last good one: its version and overlay are
kept in the cache, and ``with_kept_overlay`` lays that overlay over the file's config when the
agent starts, so a restart runs what HQ last set. Every outcome is kept and published on the
box's retained ``config_result`` topic; if the pump is not connected at that moment (it may
be reconnecting with the new settings), it publishes it after its next connect. The pump's
health summary says the same in brief (``config_health``: the version running, the last
outcome and what it was about). Nothing here raises into the pump or ends the agent for a bad
config: refusals are results.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract import config_document, config_result
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.config_result import ConfigResult, FieldError, Outcome
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.presence import ConfigHealth
from config.diff import ConfigDiff
from config.model import AgentConfig
from config.overlay import Ready, check, laid_over
from edge_agent.cache.code_cache import CodeCache
from edge_agent.config_push import kept_push
from edge_agent.config_push.kept_push import KeptPush
from edge_agent.domain.token_codec import public_key_from_text
from edge_agent.follow import hq_keys
from edge_agent.runtime.reconfigure import Reconfigured, Status
from edge_agent.sync.hq_trust import HqTrust, RefusedDocumentError

log = logging.getLogger(__name__)
QUEUE_MAX: Final = 16  # configs waiting; a flood beyond is dropped (the retained one comes again)

OnCache = Callable[[Callable[[CodeCache], Any]], Awaitable[Any]]
Apply = Callable[[AgentConfig], Awaitable[Reconfigured]]
Health = Callable[[AgentConfig, ConfigDiff], Awaitable[list[FieldError]]]


def with_kept_overlay(file_cfg: AgentConfig, kept: KeptPush) -> AgentConfig:
    """The config to start with: HQ's last good overlay over the file's config, or the file's
    alone (logged) when the file changed so that the overlay no longer fits it."""
    if not kept.overlay:
        return file_cfg
    laid = laid_over(file_cfg, kept.overlay)
    if isinstance(laid, list):
        log.warning(
            "config push: HQ's config %s no longer fits this file (%s): running the file's",
            kept.running_version,
            "; ".join(map(str, laid)),
        )
        return file_cfg
    return laid


class ConfigFollower:
    def __init__(
        self,
        *,
        store_id: str,
        box_id: str,
        base: AgentConfig,
        kept: KeptPush,
        on_cache: OnCache,
        apply: Apply,
        running: Callable[[], AgentConfig],
        health: Health,
        publish: Callable[[bytes], bool],
        clock: Callable[[], datetime],
    ) -> None:
        self._store_id = store_id
        self._box_id = box_id
        self._base = base  # the config file's, without HQ's overlay
        self.kept = kept
        self._on_cache = on_cache
        self._apply = apply
        self._running = running
        self._health = health
        self._publish = publish
        self._clock = clock
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)
        self.results: list[ConfigResult] = []  # every outcome since start (tests, logs)
        self._last = _last_result(kept.result)  # for health, across restarts

    # -- from the pump, on the loop -----------------------------------------------------------

    def on_config(self, payload: bytes) -> None:
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("config push: %d configs waiting: one dropped", QUEUE_MAX)

    def result_payload(self) -> bytes | None:
        """The last result, for the pump to publish (retained) after it connects."""
        return self.kept.result

    def config_health(self) -> ConfigHealth:
        """What the box's health says of HQ's config: the version running, the last outcome."""
        last = self._last
        return ConfigHealth(
            version=self.kept.running_version,
            outcome=None if last is None else last.outcome,
            outcome_version=None if last is None else last.version,
            outcome_at=None if last is None else last.at,
        )

    # -- SIGHUP ---------------------------------------------------------------------------------

    def rebased(self, file_cfg: AgentConfig) -> AgentConfig:
        """The config file was read again: HQ's last good overlay over it from now on."""
        self._base = file_cfg
        return with_kept_overlay(file_cfg, self.kept)

    # -- the task -------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            payload = await self._queue.get()
            result = await self._take(payload)
            if result is not None:
                await self._answer(result)

    async def _take(self, payload: bytes) -> ConfigResult | None:
        pinned_text = self._running().sync.hq_public_key
        pinned = None if pinned_text is None else public_key_from_text(pinned_text)
        if pinned is None:
            why = "no_hq_key: sync.hq_public_key is not set: no config is trusted"
            return self._result(None, Outcome.REJECTED, [FieldError("", why)])
        announced = await self._on_cache(lambda cache: hq_keys.read(cache.conn))
        trust = HqTrust.pinned(pinned, announced)
        try:
            body = trust.open(payload, kind=Kind.CONFIG, now=self._clock()).body
        except RefusedDocumentError as exc:
            return self._result(None, Outcome.REJECTED, [FieldError("", str(exc))])
        try:
            doc = config_document.decode(body)
        except MessageError as exc:
            return self._result(None, Outcome.REJECTED, [FieldError("", f"{exc.reason}: {exc}")])
        if doc.store_id != self._store_id:
            why = f"a config for store {doc.store_id}, not {self._store_id}"
            return self._result(doc.version, Outcome.REJECTED, [FieldError("", why)])
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        seen = self.kept.seen_version
        if seen is not None and doc.version <= seen:
            if doc.version == seen and digest == self.kept.seen_digest:
                return None  # the retained config again, after a connect: nothing new
            why = f"replay: version {doc.version} is not newer than {seen}, the last taken"
            return self._result(doc.version, Outcome.REJECTED, [FieldError("version", why)])
        await self._keep(replace(self.kept, seen_version=doc.version, seen_digest=digest))
        return await self._apply_document(doc)

    async def _apply_document(self, doc: ConfigDocument) -> ConfigResult:
        before = self._running()
        checked = check(doc.overlay, base=self._base, running=before)
        if not isinstance(checked, Ready):
            return self._result(doc.version, checked.outcome, checked.errors)
        if not checked.diff.changes:
            self._keep_good(doc)
            return self._result(doc.version, Outcome.UNCHANGED, [])
        outcome = await self._apply(checked.config)
        outcome.log(f"HQ (version {doc.version})")
        if outcome.status is Status.REFUSED:
            errors = [FieldError("", p) for p in outcome.problems]
            return self._result(doc.version, Outcome.REJECTED, errors)
        failed = await self._health(checked.config, checked.diff)
        if failed:
            back = await self._apply(before)
            back.log(f"the last good config (rolling back version {doc.version})")
            if back.status is Status.REFUSED:  # the agent runs the new config: say so
                failed += [FieldError("", f"rollback refused: {p}") for p in back.problems]
            return self._result(doc.version, Outcome.ROLLED_BACK, failed)
        self._keep_good(doc)
        return self._result(doc.version, Outcome.APPLIED, [])

    def _keep_good(self, doc: ConfigDocument) -> None:
        self.kept = replace(self.kept, running_version=doc.version, overlay=doc.overlay)

    def _result(
        self,
        version: int | None,
        outcome: Outcome,
        errors: list[FieldError] | tuple[FieldError, ...],
    ) -> ConfigResult:
        return ConfigResult(
            store_id=self._store_id,
            box_id=self._box_id,
            version=version,
            running=self.kept.running_version,
            outcome=outcome,
            errors=config_result.bounded(errors),
            at=self._clock(),
        )

    async def _keep(self, kept: KeptPush) -> None:
        await self._on_cache(lambda cache: kept_push.write(cache, kept))
        self.kept = kept

    async def _answer(self, result: ConfigResult) -> None:
        payload = config_result.encode(result)
        await self._keep(replace(self.kept, result=payload))
        self._last = result
        self.results.append(result)
        about = "a config" if result.version is None else f"config {result.version}"
        if result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
            log.info("config push: %s %s", about, result.outcome.value)
        else:
            log.warning(
                "config push: %s %s: %s",
                about,
                result.outcome.value,
                "; ".join(map(str, result.errors)),
            )
        if not self._publish(payload):
            log.info("config push: not connected: the result is published after the next connect")


def _last_result(payload: bytes | None) -> ConfigResult | None:
    """The result the cache keeps, read back; None if there is none, or it no longer decodes
    (written by another version: the next push's result replaces it)."""
    if payload is None:
        return None
    try:
        return config_result.decode(payload)
    except MessageError:
        return None
