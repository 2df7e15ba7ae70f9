"""The migration file of ``storeside-hq points import``: CSV ``member_id,points``.

Every row is checked before anything is booked and every fault is reported at once (up to
``MAX_FAULTS``), so a file is fixed in one pass: a member id not empty and not twice, points
a whole number (negative: the member owed points in the old system).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Final

from cloud_sync.hq.errors import InputError

COLUMNS: Final = ("member_id", "points")
MAX_FAULTS: Final = 20
_INT = re.compile(r"-?[0-9]{1,18}")


def read_balances(path: Path) -> list[tuple[str, int]]:
    """(member, points) of each row, in file order; ``InputError`` listing the faults."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    rows: list[tuple[str, int]] = []
    faults: list[str] = []
    seen: set[str] = set()
    with handle:
        reader = csv.DictReader(handle)
        try:
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise InputError(f"{path}: the header must be {','.join(COLUMNS)}")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    faults.append(f"{where}: more cells than columns")
                    continue
                member = (row["member_id"] or "").strip()
                points = (row["points"] or "").strip()
                if not member:
                    faults.append(f"{where}: member_id is empty")
                elif member in seen:
                    faults.append(f"{where}: member {member!r} twice")
                if not _INT.fullmatch(points):
                    faults.append(f"{where}: points {points!r} is not a whole number")
                if member and member not in seen and _INT.fullmatch(points):
                    rows.append((member, int(points)))
                seen.add(member)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}:{reader.line_num}: {exc}") from exc
    if faults:
        shown = "; ".join(faults[:MAX_FAULTS])
        more = f" (and {len(faults) - MAX_FAULTS} more)" if len(faults) > MAX_FAULTS else ""
        raise InputError(f"{len(faults)} faulty rows: {shown}{more}")
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
