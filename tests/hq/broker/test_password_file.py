"""Mosquitto's password file, written and read in-process: a hash made here is verified by
Mosquitto (every test in tests/mqtt/ runs on such a file), and one ``mosquitto_passwd`` made is
verified here."""

from __future__ import annotations

import base64
import hashlib
import stat
import subprocess
from pathlib import Path

import pytest

from cloud_sync.hq.broker.errors import BadUsernameError, PasswordFileError
from cloud_sync.hq.broker.mosquitto import executable
from cloud_sync.hq.broker.password_file import (
    hash_password,
    read_password_file,
    verify_password,
    write_password_file,
)


def test_a_hash_verifies_its_password_only() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$7$101$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret ", hashed)
    assert hash_password("s3cret") != hashed  # a fresh salt each time


def test_mosquitto_1x_sha512_hashes_still_verify() -> None:
    salt = b"0123456789ab"
    digest = hashlib.sha512(b"old-pw" + salt).digest()
    hashed = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password("old-pw", hashed) and not verify_password("other", hashed)


def test_garbage_never_verifies() -> None:
    for junk in ("", "plaintext", "$7$x$y$z", "$7$101$!!$!!", "$6$only"):
        assert not verify_password("", junk)
        assert not verify_password("plaintext", junk)


def test_a_file_mosquitto_passwd_made_is_read_and_verified(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(
        [executable("mosquitto_passwd"), "-c", "-b", str(path), "box-017", "box-pw"],
        check=True,
        capture_output=True,
        timeout=10,
    )
    hashes = read_password_file(path)
    assert verify_password("box-pw", hashes["box-017"])


def test_the_file_written_holds_hashes_only_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    write_password_file(path, {"box-a": "pa", "hq-ingest": "ph"})
    text = path.read_text()
    assert "pa\n" not in text and "ph\n" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    hashes = read_password_file(path)
    assert verify_password("pa", hashes["box-a"]) and verify_password("ph", hashes["hq-ingest"])
    assert [p.name for p in tmp_path.iterdir()] == ["pw"]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("box-a:plaintext\n", "2: not a Mosquitto"),
        ("no-separator\n", "2: no ':'"),
        ("box-a:$7$101$AAAA$AAAA\nbox-a:$7$101$AAAA$AAAA\n", "3: user 'box-a' appears twice"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "pw"
    path.write_text("# a comment\n" + text)
    with pytest.raises(PasswordFileError, match=why):
        read_password_file(path)


@pytest.mark.parametrize("name", ["", "a:b", "a\nb:$7$..", "tab\there"])
def test_usernames_a_line_cannot_hold_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadUsernameError):
        write_password_file(tmp_path / "pw", {name: "pw"})


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
