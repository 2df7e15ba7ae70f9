"""Ledger entries as CSV (RFC 4180, a header row first, UTF-8), for auditors' spreadsheets.

One row per entry with the columns of ``ledger_api.entries.Entry`` in ``COLUMNS`` order;
times are ISO 8601 UTC, an absent store, till or campaign is an empty cell. ``lines`` yields
the text a row at a time (the API streams it, the CLI writes it), so an export of millions
of entries never sits in memory; ``parse`` reads such a text back into entries, every row
checked by the same model, which is what the round-trip test holds it to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Final

from cloud_sync.hq.ledger_api.entries import Entry

COLUMNS: Final = tuple(Entry.model_fields)
_OPTIONAL: Final = frozenset({"store", "till", "campaign"})


class CsvFormatError(ValueError):
    """A text that is not an entries export (wrong header, a bad row)."""


def _line(values: Iterable[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def lines(entries: Iterable[Entry]) -> Iterator[str]:
    yield _line(COLUMNS)
    for e in entries:
        row = e.model_dump(mode="json")
        yield _line("" if row[c] is None else row[c] for c in COLUMNS)


def parse(text: str) -> list[Entry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise CsvFormatError(f"the header is not {','.join(COLUMNS)}")
    out = []
    for n, row in enumerate(reader, start=2):
        if len(row) != len(COLUMNS):
            raise CsvFormatError(f"row {n}: {len(row)} cells, not {len(COLUMNS)}")
        values = {
            c: (None if c in _OPTIONAL and v == "" else v)
            for c, v in zip(COLUMNS, row, strict=True)
        }
        try:
            out.append(Entry.model_validate(values))
        except ValueError as exc:
            raise CsvFormatError(f"row {n}: {exc}") from None
    return out
