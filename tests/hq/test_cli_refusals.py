"""Every ``storeside-hq`` command refuses what it cannot do with one line and exit 2 (issue 6).

Real HQ files and, where the behaviour is the process's (pipes, ``--version``), a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cloud_sync.hq.cli import main
from tests.hq.conftest import campaign_doc


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses before main's handler runs
        return int(exc.code or 0)


def _assert_one_line_refusal(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("storeside-hq")
    assert "Traceback" not in err
    assert message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefix", "É"], "prefix"),
        (["--prefix", "ss"], "prefix"),
        (["--prefix", ""], "prefix"),
        (["--prefix", "ABCDEFGHIJ"], "prefix"),
        (["--random-length", "13"], "random_length"),
        (["--random-length", "3"], "random_length"),
        (["--random-length", "0"], "random-length"),
        (["--namespace-length", "0"], "namespace_length"),
        (["--namespace-length", "40"], "namespace_length"),
        (["--namespace-length", "4", "--random-length", "26"], "random_length"),
    ],
)
def test_init_refuses_formats_mint_could_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    db = tmp_path / "hq.db"
    code = _exit(["--db", str(db), "init", *args])
    _assert_one_line_refusal(code, capsys.readouterr().err, message)
    assert not db.exists()


def test_every_format_init_accepts_can_mint(tmp_path: Path) -> None:
    for i, args in enumerate(
        [
            ["--prefix", "O0"],
            ["--prefix", "ABCDEF", "--namespace-length", "4", "--random-length", "12"],
            ["--prefix", "Z", "--namespace-length", "1", "--random-length", "6"],
        ]
    ):
        db = str(tmp_path / f"hq{i}.db")
        (tmp_path / "c.json").write_text(
            json.dumps(campaign_doc("C", ends_at="2099-01-01T00:00:00+00:00")), encoding="utf-8"
        )
        assert main(["--db", db, "init", *args]) == 0
        assert main(["--db", db, "campaign", "create", str(tmp_path / "c.json")]) == 0
        assert main(["--db", db, "--quiet", "mint", "--campaign", "C", "--count", "50"]) == 0
        assert main(["--db", db, "namespace", "assign", "store-1"]) == 0


@pytest.fixture
def hq(tmp_path: Path) -> Path:
    db = tmp_path / "hq.db"
    (tmp_path / "c.json").write_text(
        json.dumps(campaign_doc("C", ends_at="2099-01-01T00:00:00+00:00")), encoding="utf-8"
    )
    (tmp_path / "adir").mkdir()
    (tmp_path / "m.csv").write_text("member_id\nm1\n", encoding="utf-8")
    (tmp_path / "ok.csv").write_text("code\nOKCODE1\n", encoding="utf-8")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert main(["--db", str(db), "init"]) == 0
    assert main(["--db", str(db), "campaign", "create", str(tmp_path / "c.json")]) == 0
    assert main(["--db", str(db), "--quiet", "mint", "--campaign", "C", "--count", "5000"]) == 0
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["snapshot", "--store", "S1", "{d}/adir"], "adir"),
        (["mint", "--campaign", "C", "--count", "5", "--valid-days", "10" * 10], "valid-days"),
        (["mint", "--campaign", "C", "--count", "10" * 10], "count"),
        (["campaign", "allocate", "C", "S1", "1" * 25], "allocation"),
        (
            ["generic", "--campaign", "C", "ABCDX", "--expires-at", "9999-12-31T23:59:59-05:00"],
            "--expires-at",
        ),
        (["import", "--campaign", "C", "{d}/m.csv"], "'code' column"),
        (["import", "--campaign", "NOPE", "{d}/absent.csv"], "No such file"),
        (["export", "--campaign", "NOPE", "-"], "no campaign 'NOPE'"),
        (["campaign", "create", "{d}/adir"], "Is a directory"),
        (["members", "import", "{d}/absent.csv"], "No such file"),
        (["keys", "register", "S1", "notakey"], "public key"),
        (["campaign", "create", "{d}/deep.json"], "nested"),
        (["receipt-campaigns", "create", "--starts-at", "9999-12-01T00:00:00+00:00"], "range"),
        (["export", "--campaign", "C", "/dev/full"], "No space left"),
        (["import", "--campaign", "C", "{d}/ok.csv", "--report", "{d}/adir"], "adir"),
    ],
)
def test_bad_inputs_are_one_line_and_exit_2(
    hq: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    argv = ["--db", str(hq / "hq.db"), *(a.format(d=hq) for a in args)]
    code = _exit(argv)
    _assert_one_line_refusal(code, capsys.readouterr().err, message)
    assert main(["--db", str(hq / "hq.db"), "revoke", "OKCODE1"]) == 2  # exit 2: nothing stored


def _hq_process(*args: str) -> list[str]:
    return [sys.executable, "-m", "cloud_sync.hq.cli", *args]


def test_export_into_a_closed_pipe_ends_quietly(hq: Path) -> None:
    """``storeside-hq export --campaign C - | head -1``: no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        _hq_process("--db", str(hq / "hq.db"), "export", "--campaign", "C", "-"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"code,")
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141)  # 141 = 128 + SIGPIPE, a shell's quiet end
    assert err == ""


def test_version_comes_from_the_package_metadata() -> None:
    done = subprocess.run(
        _hq_process("--version"), capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"storeside-hq {version('storeside')}\n"
