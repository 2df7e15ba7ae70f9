"""The LICENSE file is the full text of the licence ``pyproject.toml`` declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    words = " ".join(text.split())
    assert words.startswith("Apache License Version 2.0, January 2004")
    # The full standard text, not a stub: all nine sections and the appendix.
    assert "9. Accepting Warranty or Additional Liability." in words
    assert "END OF TERMS AND CONDITIONS" in words
    assert "APPENDIX: How to apply the Apache License to your work." in words
