"""What a new config changes in a running agent, and whether each change can be applied live.

Theory of operation
-------------------
``diff_configs(running, new)`` compares two valid ``AgentConfig``s field by field (a section's
field is the unit: ``api.tills``, ``redemption.till_failure_limit``, ``printer.template``) and
answers one ``FieldChange`` per field that differs, each with its ``Apply`` mode and the reason
for it, in schema order. It is pure: no I/O, nothing of the agent imported, so HQ can run the
same check on a config before pushing it (issue 9) and the agent can run it before touching
anything.

A field is **live** when the agent can rebuild what reads it between two till requests (the
till authenticator, the redemption and issue services on the SQLite thread, the print worker
and its printer, the periodic timers). It **needs a restart** when it names something the
running process was opened or bound with: the cache file, the listening socket, the signing
key, the store's identity and code format, which every stored row and issued code depend on.
A restart is the honest way to change those: the process starts clean from the new file.

``RULES`` decides, most specific path first (``section.field``, then ``section``). A field no
rule names needs a restart: a setting added to the schema is never applied live by accident,
and a test checks that every field of today's schema has a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from config.model import AgentConfig, ApiConfig

_SHOWN_CHARS = 60  # a value longer than this is shown as "changed" in logs


class Apply(StrEnum):
    LIVE = "live"
    RESTART = "restart"


@dataclass(frozen=True, slots=True)
class Rule:
    apply: Apply
    why: str


# The offers' policy: HQ pushes these as campaigns change, so they apply without a restart.
PRESENCE_LIVE = (
    "rules", "offers_enabled", "max_per_visit", "max_per_day", "quiet_hours",
    "holdout_percent", "holdout_key", "timezone",
)  # fmt: skip


def _live(why: str) -> Rule:
    return Rule(Apply.LIVE, why)


def _restart(why: str) -> Rule:
    return Rule(Apply.RESTART, why)


RULES: Mapping[str, Rule] = {
    "code_format": _restart(
        "the code format decides which codes exist; the cache and HQ's snapshots are built for it"
    ),
    "store.store_id": _restart(
        "the store's identity: the cache, its events and the signing key are bound to it"
    ),
    "store.box_id": _restart("the box's identity, named as the source of every event"),
    "store.namespace": _restart(
        "the minting namespace is the box's identity as a minter, checked against the snapshot"
    ),
    "cache.path": _restart(
        "the cache file is open on the SQLite thread and the print worker's connection"
    ),
    "cache.checkpoint_interval_s": _live("the checkpoint timer is re-armed"),
    "cache.housekeeping_interval_s": _live("the housekeeping timer is re-armed"),
    "cache.retention_days": _live("the housekeeping timer is re-armed with it"),
    "redemption": _live(
        "the redemption service is rebuilt between two requests; the tills' throttle state is "
        "kept, and holds already taken keep their expiry"
    ),
    "api.host": _restart("the POS API's socket is bound at start"),
    "api.port": _restart("the POS API's socket is bound at start"),
    "api.tills": _live("the till authenticator is replaced: old tokens refused, new ones accepted"),
    "receipt_offers": _live("the issue service is rebuilt; the next checkout uses the new offers"),
    "printer": _live(
        "the print worker restarts with it; queued jobs stay queued and print after the change"
    ),
    "printer.header_lines": _live(
        "the issue service is rebuilt; coupons issued from now on carry it (queued ones keep "
        "what they were issued with)"
    ),
    "printer.reminder": _live(
        "the issue service is rebuilt; coupons issued from now on carry it (queued ones keep "
        "what they were issued with)"
    ),
    "signing.key_path": _restart(
        "the signing key is loaded at start, and HQ must have registered a new one first"
    ),
    "signing.trust_own_key": _live("the redemption service is rebuilt with it"),
    "sync": _live(
        "the link to HQ reconnects with it; the outbox keeps every event until HQ has it"
    ),
    "presence": _restart(
        "the scanners, readers and zones are opened and placed at start (the offer rules, caps, "
        "quiet hours, holdout and time zone change live)"
    ),
    "points": _live(
        "the points service is rebuilt between two requests with the new rules; sales already "
        "booked keep the rules they were booked under, so their returns reverse them exactly"
    ),
    "points.programme": _restart(
        "the programme names the ledger accounts every posting of this box is booked in; "
        "balances and marks from HQ are per programme"
    ),
    **{
        f"presence.{name}": _live(
            "the proximity service is rebuilt and the presence loop takes the new rules; members "
            "in a zone are followed afresh (the caps still count what they were given)"
        )
        for name in PRESENCE_LIVE
    },
}
_UNRULED = _restart("no rule says this setting can change while the agent runs")


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldChange:
    path: str  # "section.field"
    apply: Apply
    why: str
    detail: str  # what changed, for a log line ("10 -> 3", "till-2 added")

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    def describe(self) -> str:
        verb = "applied live" if self.apply is Apply.LIVE else "needs a restart"
        return f"{self.path} ({self.detail}) {verb}: {self.why}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDiff:
    changes: tuple[FieldChange, ...] = ()

    @property
    def live(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.apply is Apply.LIVE)

    @property
    def restart(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.changes if c.apply is Apply.RESTART)

    @property
    def applicable_live(self) -> bool:
        """Every change can be applied without a restart (also true of no change at all)."""
        return not self.restart

    def touches(self, *paths: str) -> bool:
        """Any change at one of ``paths`` (a section, or a ``section.field``)."""
        return any(p in (c.path, c.section) for c in self.changes for p in paths)


def rule_for(path: str, rules: Mapping[str, Rule] = RULES) -> Rule:
    section = path.split(".", 1)[0]
    return rules.get(path) or rules.get(section) or _UNRULED


def diff_configs(
    running: AgentConfig, new: AgentConfig, *, rules: Mapping[str, Rule] = RULES
) -> ConfigDiff:
    """Every field of ``new`` that differs from ``running``, classified (see module docstring)."""
    changes: list[FieldChange] = []
    for section in type(running).model_fields:
        before: BaseModel = getattr(running, section)
        after: BaseModel = getattr(new, section)
        if before == after:
            continue
        for name in type(before).model_fields:
            old, now = getattr(before, name), getattr(after, name)
            if old == now:
                continue
            path = f"{section}.{name}"
            rule = rule_for(path, rules)
            detail = _tills_detail(before, after) if path == "api.tills" else _detail(old, now)
            changes.append(FieldChange(path=path, apply=rule.apply, why=rule.why, detail=detail))
    return ConfigDiff(changes=tuple(changes))


def _detail(old: object, new: object) -> str:
    shown = f"{old!r} -> {new!r}"
    return shown if len(shown) <= _SHOWN_CHARS else "changed"


def _tills_detail(before: BaseModel, after: BaseModel) -> str:
    # Named by till id: a log line never carries token digests.
    assert isinstance(before, ApiConfig) and isinstance(after, ApiConfig)
    old = {t.till_id: t.token_sha256 for t in before.tills}
    new = {t.till_id: t.token_sha256 for t in after.tills}
    parts = [f"{t} added" for t in new if t not in old]
    parts += [f"{t} removed" for t in old if t not in new]
    parts += [f"{t} new token" for t in new if t in old and old[t] != new[t]]
    return ", ".join(parts) or "reordered"
