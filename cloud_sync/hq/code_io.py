"""CSV in and out of HQ: member lists, brand-supplied codes, and a campaign's codes for sending.

Files are read strictly: a header row is required, unknown columns are refused (a misspelt
``segmnet`` must not be silently ignored), and errors name the line.

Importing brand codes is forgiving per row and strict per file: every row that cannot be
stored is reported with its line and reason, and the rest is stored in one transaction, sorted
by code. Duplicates (within the file or against codes HQ already holds) are reported apart from
other rejects, because the brand usually wants to re-issue exactly those.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cloud_sync.hq import change_journal
from cloud_sync.hq.central_store import CentralStore, MemberRow, from_epoch, to_epoch
from cloud_sync.hq.change_journal import Kind
from cloud_sync.hq.errors import CampaignEndedError, InputError
from cloud_sync.hq.literal_codes import NearIndex, literal_problem, normalise_literal

MEMBER_COLUMNS = ("member_id", "segment", "tier", "proximity_consent", "channel", "variant")
IMPORT_COLUMNS = ("code", "member_id", "channel", "variant", "expires_at")
EXPORT_COLUMNS = (
    "code",
    "member_id",
    "campaign",
    "channel",
    "variant",
    "issued_at",
    "expires_at",
    "status",
)
_LOOKUP_CHUNK = 50_000
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    campaign_id: str
    run_id: int
    imported: int
    duplicates: tuple[Refusal, ...]
    rejects: tuple[Refusal, ...]


def _rows(
    path: Path, required: str, allowed: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with blank cells dropped) for each data row of a CSV file."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames
            if not header or required not in header:
                raise InputError(f"{path}: needs a header row with a {required!r} column")
            unknown = sorted(set(header) - set(allowed))
            if unknown:
                raise InputError(
                    f"{path}: unknown columns {unknown}; allowed: {', '.join(allowed)}"
                )
            for row in reader:
                if None in row:
                    raise InputError(f"{path}:{reader.line_num}: more cells than columns")
                cells = {k: v.strip() for k, v in row.items() if v is not None and v.strip()}
                if cells:
                    yield reader.line_num, cells
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}:{reader.line_num}: {exc}") from exc


def _consent(value: str | None, where: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InputError(f"{where}: proximity_consent must be true or false, got {value!r}")


def read_members(path: Path) -> list[MemberRow]:
    """A member list: ``member_id`` and optionally segment, tier, consent, channel, variant."""
    members = []
    for line, cells in _rows(path, "member_id", MEMBER_COLUMNS):
        if "member_id" not in cells:
            raise InputError(f"{path}:{line}: member_id is empty")
        members.append(
            MemberRow(
                member_id=cells["member_id"],
                segment=cells.get("segment"),
                tier=cells.get("tier"),
                proximity_consent=_consent(cells.get("proximity_consent"), f"{path}:{line}"),
                channel=cells.get("channel"),
                variant=cells.get("variant"),
            )
        )
    if not members:
        raise InputError(f"{path}: no members listed")
    return members


def parse_time(value: str, what: str) -> datetime:
    """An ISO 8601 timestamp with an offset, as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{what}: not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InputError(f"{what}: timestamp needs a UTC offset (e.g. +00:00): {value!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past datetime.max in UTC
        raise InputError(f"{what}: out of range: {value!r}") from None


def import_codes(
    central: CentralStore,
    *,
    campaign_id: str,
    path: Path,
    now: datetime,
    channel: str = "paper",
    variant: str = "A",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Store brand-supplied codes verbatim (normalised) for ``campaign_id``; see the docstring."""
    rejects: list[Refusal] = []
    duplicates: list[Refusal] = []
    first_line: dict[str, int] = {}
    earlier = NearIndex()
    rows: dict[str, tuple[int, str | None, str, str, int | None]] = {}
    for line, cells in _rows(path, "code", IMPORT_COLUMNS):
        raw = cells.get("code", "")
        code = normalise_literal(raw)
        problem = literal_problem(code, central.fmt)
        expires: int | None = None
        if problem is None and "expires_at" in cells:
            try:
                expires = to_epoch(parse_time(cells["expires_at"], "expires_at"))
            except InputError as exc:
                problem = str(exc)
        if problem is not None:
            rejects.append(Refusal(line, raw, problem))
        elif code in first_line:
            duplicates.append(Refusal(line, code, f"repeats line {first_line[code]}"))
        elif (other := _near_in_file(code, earlier, first_line)) is not None:
            rejects.append(
                Refusal(
                    line,
                    code,
                    f"it is one mistype away from {other} (line {first_line[other]}), "
                    "so a typo of one would be taken for the other",
                )
            )
        else:
            first_line[code] = line
            earlier.add(code)
            rows[code] = (
                line,
                cells.get("member_id"),
                cells.get("channel", channel),
                cells.get("variant", variant),
                expires,
            )
        if progress is not None:
            progress(1)
    with central.write():
        promotion = central.campaign(campaign_id)
        if promotion.ends_at <= now:
            raise CampaignEndedError(campaign_id)
        for code, other in _existing(central, list(rows)):
            duplicates.append(Refusal(rows.pop(code)[0], code, f"already exists ({other})"))
        for code, why in central.near_codes(sorted(rows)).items():
            rejects.append(Refusal(rows.pop(code)[0], code, why))
        members = {r[1] for r in rows.values() if r[1] is not None}
        unknown = members - _known_members(central, sorted(members))
        for code in [c for c, r in rows.items() if r[1] in unknown]:
            line, member_id = rows.pop(code)[:2]
            rejects.append(Refusal(line, code, f"unknown member {member_id!r}"))
        run_id = central.new_run(
            campaign_id, kind="imported", namespaces="", created=len(rows), now=now
        )
        issued = to_epoch(now)
        central.conn.executemany(
            "INSERT INTO codes (code, campaign_id, member_id, status, channel, variant, "
            "issued_at, expires_at, linked_member_id, run_id) "
            "VALUES (?, ?, ?, 'active', ?, ?, ?, ?, NULL, ?)",
            (
                (code, campaign_id, member, ch, var, issued, expires, run_id)
                for code, (_, member, ch, var, expires) in sorted(rows.items())
            ),
        )
        central.add_literals(sorted(rows))
        change_journal.record(central.conn, Kind.CODE, sorted(rows), at=issued)
    return ImportReport(
        campaign_id=campaign_id,
        run_id=run_id,
        imported=len(rows),
        duplicates=tuple(sorted(duplicates, key=lambda r: r.line)),
        rejects=tuple(sorted(rejects, key=lambda r: r.line)),
    )


def _near_in_file(code: str, earlier: NearIndex, first_line: dict[str, int]) -> str | None:
    """An earlier row of the same file one mistype away from ``code`` (the first by line)."""
    near = earlier.near(code)
    return min(near, key=first_line.__getitem__) if near else None


def _existing(central: CentralStore, codes: list[str]) -> list[tuple[str, str]]:
    """(code, its campaign) for those of ``codes`` HQ already holds."""
    found: list[tuple[str, str]] = []
    for start in range(0, len(codes), _LOOKUP_CHUNK):
        found += central.conn.execute(
            "SELECT code, 'campaign ' || campaign_id FROM codes "
            "WHERE code IN (SELECT value FROM json_each(?))",
            (json.dumps(codes[start : start + _LOOKUP_CHUNK]),),
        ).fetchall()
    return found


def _known_members(central: CentralStore, member_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(member_ids), _LOOKUP_CHUNK):
        known.update(
            str(m)
            for (m,) in central.conn.execute(
                "SELECT member_id FROM members WHERE member_id IN (SELECT value FROM json_each(?))",
                (json.dumps(member_ids[start : start + _LOOKUP_CHUNK]),),
            )
        )
    return known


def _iso(epoch: int | None) -> str:
    return "" if epoch is None else from_epoch(epoch).isoformat()


def export_codes(central: CentralStore, *, campaign_id: str, out: TextIO) -> int:
    """Write the campaign's codes as CSV (``EXPORT_COLUMNS``) in code order; returns the count.

    ``expires_at`` is the date that applies: the code's own, else the campaign's end, so the
    file can go straight into a mailing.
    """
    promotion = central.campaign(campaign_id)
    campaign_end = to_epoch(promotion.ends_at)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    rows = central.conn.execute(
        "SELECT code, member_id, channel, variant, issued_at, expires_at, status FROM codes "
        "WHERE campaign_id = ? ORDER BY code",
        (campaign_id,),
    )
    for code, member_id, ch, var, issued, expires, status in rows:
        writer.writerow(
            (
                code,
                member_id or "",
                campaign_id,
                ch,
                var,
                _iso(issued),
                _iso(campaign_end if expires is None else expires),
                status,
            )
        )
        count += 1
    return count
