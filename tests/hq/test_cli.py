"""The ``storeside-hq`` command: an end-to-end run as a real process, and its refusals."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from cloud_sync.hq.cli import main
from tests.hq.conftest import campaign_doc, run_hq


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "spring.json").write_text(
        json.dumps(campaign_doc("SPRING", ends_at="2099-01-01T00:00:00+00:00")), encoding="utf-8"
    )
    (tmp_path / "members.csv").write_text(
        "member_id,segment,tier\nM1,loyal,gold\nM2,at_risk,\nM3,,\n", encoding="utf-8"
    )
    (tmp_path / "brand.csv").write_text("code\nZN34C\nzn-34c\n50%OFF\nWIN2GO\n", encoding="utf-8")
    return tmp_path


def test_end_to_end_as_a_real_process(files: Path) -> None:
    db = str(files / "hq.db")
    steps = [
        ("init", "--prefix", "FN"),
        ("campaign", "create", str(files / "spring.json")),
        ("mint", "--campaign", "SPRING", "--members", str(files / "members.csv")),
        ("mint", "--campaign", "SPRING", "--count", "1000", "--valid-days", "14"),
        ("generic", "--campaign", "SPRING", "holiman-100"),
        ("revoke", "HOLIMAN100"),
        ("export", "--campaign", "SPRING", str(files / "out.csv")),
        ("snapshot", "--store", "S1", str(files / "s1.db")),
    ]
    for step in steps:
        done = run_hq("--db", db, *step)
        assert (done.returncode, done.stderr) == (0, ""), step  # no progress bar off a TTY
    assert run_hq("--db", db, "campaign", "list").stdout.startswith("SPRING\topen\t1004 codes\t")
    with (files / "out.csv").open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == 1004
    assert {r["member_id"] for r in exported} == {"M1", "M2", "M3", ""}
    assert all(r["code"].startswith("FN") for r in exported if r["code"] != "HOLIMAN100")
    snap = sqlite3.connect(files / "s1.db")
    assert snap.execute("SELECT count(*) FROM codes").fetchone()[0] == 1004
    assert snap.execute("SELECT status FROM codes WHERE code = 'HOLIMAN100'").fetchone() == (
        "revoked",
    )
    # Partly refused import: exit 1, each refused row named on stderr.
    done = run_hq("--db", db, "import", "--campaign", "SPRING", str(files / "brand.csv"))
    assert done.returncode == 1
    assert "imported 2 codes" in done.stdout
    assert "brand.csv:3: duplicate: 'ZN34C'" in done.stderr
    assert "brand.csv:4: reject: '50%OFF'" in done.stderr
    # A user mistake: exit 2, one line, no traceback.
    done = run_hq("--db", db, "mint", "--campaign", "AUTUMN", "--count", "5")
    assert done.returncode == 2
    assert done.stderr == "storeside-hq: error: no campaign 'AUTUMN'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mint", "--campaign", "SPRING"], "one of the arguments --members --count is required"),
        (["mint", "--campaign", "SPRING", "--count", "ten"], "not a whole number: 'ten'"),
        (["mint", "--campaign", "SPRING", "--count", "0"], "must be 1..100,000,000"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["init", "--prefix", "ss"], "prefix: String should match pattern"),
        (["campaign", "create", "{files}/members.csv"], "members.csv: Expecting value"),
        (["campaign", "create", "{files}/bad.json"], "benefit.kind"),
        (["campaign", "create", "{files}/absent.json"], "absent.json: No such file"),
        (["mint", "--campaign", "SPRING", "--members", "{files}/spring.json"], "member_id"),
        (["export", "--campaign", "NOPE", "{files}/x.csv"], "no campaign 'NOPE'"),
        (["export", "--campaign", "SPRING", "{files}/no/dir.csv"], "No such file"),
        (["generic", "--campaign", "SPRING", "A"], "length 1 is outside"),
        (["generic", "--campaign", "SPRING", "HOLI1", "--expires-at", "soon"], "--expires-at"),
        (["revoke", "NOPE"], "no code 'NOPE'"),
        (["link", "NOPE", "M1"], "no member 'M1'"),
        (["snapshot", "--store", "S1", "{files}/no/dir.db"], "cannot write there"),
        (["campaign", "allocate", "NOPE", "S1", "5"], "no campaign 'NOPE'"),
        (["init"], "already exists"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    files: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    db = str(files / "hq.db")
    bad = campaign_doc("BAD", benefit={"kind": "half_off"})
    (files / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    assert main(["--db", db, "--quiet", "init"]) == 0
    assert main(["--db", db, "campaign", "create", str(files / "spring.json")]) == 0
    capsys.readouterr()
    argv = ["--db", db, *(a.format(files=files) for a in args)]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses before main's handler runs
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("storeside-hq")
    assert message in err


def test_commands_need_an_existing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "none.db"), "campaign", "list"]) == 2
    assert "create one with `init`" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_namespace_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "hq.db")
    assert main(["--db", db, "init"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "namespace", "assign", "store-7"]) == 0
    assert main(["--db", db, "namespace", "assign", "store-7"]) == 0
    first, second = capsys.readouterr().out.split()
    assert first == second == "23"  # HQ took 22 at init
    assert main(["--db", db, "namespace", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["22", "hq"], ["23", "store-7"]]
