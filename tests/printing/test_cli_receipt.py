"""`edge-agent receipt ...` in-process: preview PNG, queue listing, status, reprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from edge_agent.cli.main import main
from edge_agent.printing.document import sample_document
from tests.printing.factories import queue_job_in


def test_preview_writes_a_png_of_the_exact_bytes(tmp_path: Path) -> None:
    out, raw = tmp_path / "coupon.png", tmp_path / "coupon.prn"
    args = ["receipt", "preview", "--out", str(out), "--profile", "POS-5890", "--bytes", str(raw)]
    assert main(args) == 0
    img = Image.open(out)
    assert img.width == 384 + 32
    assert [r.text for r in zxingcpp.read_barcodes(img)] == [sample_document().qr_payload]
    assert raw.read_bytes().startswith(b"\x1b@")


def test_preview_of_a_document_file_and_bad_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(sample_document().to_json(), encoding="utf-8")
    out = tmp_path / "c.png"
    assert main(["receipt", "preview", "--out", str(out), "--document", str(doc)]) == 0
    assert main(["receipt", "preview", "--profile", "POS-5890", "--paper", "80"]) == 2
    assert "58 mm" in capsys.readouterr().err


def test_queue_status_and_reprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.toml"
    cache_path = tmp_path / "cache.db"
    config.write_text(f'[cache]\npath = "{cache_path}"\n', encoding="utf-8")
    queue_job_in(cache_path, code="C1", transaction_id="T1")
    base = ["--config", str(config), "receipt"]
    assert main([*base, "queue", "--json"]) == 0
    (job,) = json.loads(capsys.readouterr().out)
    assert job["transaction_id"] == "T1" and job["state"] == "pending"
    assert main([*base, "status", "T1", "--till", "till-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "print_pending"
    assert main([*base, "reprint", "T1", "--till", "till-1"]) == 0
    assert main([*base, "reprint", "T404", "--till", "till-1"]) == 2
    assert main([*base, "status", "T404", "--till", "till-1"]) == 2
    # A sale is (till, transaction id): another till's T1 has no coupon.
    assert main([*base, "status", "T1", "--till", "till-2"]) == 2
    assert main([*base, "reprint", "T1", "--till", "till-2"]) == 2
