"""systemd unit files read the way systemd reads them, enough for the tests' checks."""

from __future__ import annotations

from pathlib import Path


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given (a key may repeat; continuation lines joined)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r} is not KEY=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def value(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    """The one value of ``key`` (systemd keeps the last one given)."""
    return unit[section][key][-1]
