"""A stored ``points.posted`` event read for the ledger: its ledger event and basket lines.

Theory of operation
-------------------
Ingest stored the box's event text as verified (signature, chain), so the envelope is an
object; what it carries in ``details`` is only the box's word. ``read`` takes the event's
stored body and returns a ``TillPosting`` or raises ``UnreadablePostingError`` with the field
concerned. The checks, in the order they run:

1. ``details`` is an object holding ``ledger`` (``edge_agent/domain/points/codec.py``: every
   fault there keeps the codec's stable reason and field, under ``details.ledger``);
2. ``details.lines`` is a list (missing reads as empty: a void's burn reversal has none) of
   closed objects ``{line: int >= 0, sku: str, band: "A"|"B"|"C", campaign_id: str|null,
   side: "earn"|"burn", points: int >= 0}``, no (line, side) twice (the report's key);
3. ``rules_version`` and ``variant``, when present, are strings or null.

A line that cannot be read refuses the whole event rather than booking points whose report
lines are lost: the refusal (``points_refusals``) keeps it visible, and nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from edge_agent.domain.points import codec
from edge_agent.domain.points.event import LedgerEvent

BANDS: Final = frozenset({"A", "B", "C"})
SIDES: Final = frozenset({"earn", "burn"})
LINE_FIELDS: Final = frozenset({"line", "sku", "band", "campaign_id", "side", "points"})
_MAX_INT64: Final = 2**63 - 1


class UnreadablePostingError(ValueError):
    """The event's details are not a readable posting; ``field`` names where, ``reason`` is
    the codec's reason for a ledger fault, else ``bad_line`` / ``bad_details``."""

    def __init__(self, message: str, *, reason: str, field: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Line:
    line: int
    sku: str
    band: str
    campaign_id: str | None
    side: str
    points: int


@dataclass(frozen=True, slots=True)
class TillPosting:
    event: LedgerEvent
    lines: tuple[Line, ...]
    rules_version: str | None
    variant: str | None


def read(body: str) -> TillPosting:
    """The posting a stored ``points.posted`` body carries (module docstring)."""
    doc = json.loads(body)
    details = doc.get("details") if isinstance(doc, dict) else None
    if not isinstance(details, dict):
        raise UnreadablePostingError(
            "details is not an object", reason="bad_details", field="details"
        )
    if "ledger" not in details:
        raise UnreadablePostingError(
            "details.ledger is missing", reason="missing_field", field="details.ledger"
        )
    try:
        event = codec.decode(details["ledger"])
    except codec.LedgerCodecError as exc:
        where = "details.ledger" + (f".{exc.field}" if exc.field else "")
        raise UnreadablePostingError(str(exc), reason=exc.reason, field=where) from exc
    lines = _lines(details.get("lines", []))
    texts = {}
    for name in ("rules_version", "variant"):
        value = details.get(name)
        if value is not None and not isinstance(value, str):
            raise UnreadablePostingError(
                f"details.{name} is not a string", reason="bad_details", field=f"details.{name}"
            )
        texts[name] = value
    return TillPosting(
        event=event, lines=lines, rules_version=texts["rules_version"], variant=texts["variant"]
    )


def _lines(raw: object) -> tuple[Line, ...]:
    if not isinstance(raw, list):
        raise UnreadablePostingError(
            "details.lines is not a list", reason="bad_line", field="details.lines"
        )
    lines: list[Line] = []
    seen: set[tuple[int, str]] = set()
    for i, item in enumerate(raw):
        where = f"details.lines[{i}]"
        line = _line(item, where)
        if (line.line, line.side) in seen:
            raise UnreadablePostingError(
                f"{where}: line {line.line} {line.side} twice", reason="bad_line", field=where
            )
        seen.add((line.line, line.side))
        lines.append(line)
    return tuple(lines)


def _line(item: object, where: str) -> Line:
    if not isinstance(item, Mapping) or set(item) != LINE_FIELDS:
        raise UnreadablePostingError(
            f"{where} is not a line object with exactly {sorted(LINE_FIELDS)}",
            reason="bad_line",
            field=where,
        )
    number, points = item["line"], item["points"]
    sku, band, campaign, side = item["sku"], item["band"], item["campaign_id"], item["side"]
    for name, value in (("line", number), ("points", points)):
        if type(value) is not int or not 0 <= value <= _MAX_INT64:
            raise UnreadablePostingError(
                f"{where}.{name} is not an int >= 0", reason="bad_line", field=f"{where}.{name}"
            )
    if not isinstance(sku, str) or not sku:
        raise UnreadablePostingError(f"{where}.sku", reason="bad_line", field=f"{where}.sku")
    if band not in BANDS:
        raise UnreadablePostingError(f"{where}.band", reason="bad_line", field=f"{where}.band")
    if side not in SIDES:
        raise UnreadablePostingError(f"{where}.side", reason="bad_line", field=f"{where}.side")
    if campaign is not None and not isinstance(campaign, str):
        raise UnreadablePostingError(
            f"{where}.campaign_id", reason="bad_line", field=f"{where}.campaign_id"
        )
    return Line(
        line=number, sku=sku, band=str(band), campaign_id=campaign, side=str(side), points=points
    )
