"""Keys end to end: the store's key file and CLI, HQ's registry and CLI, snapshots carrying keys."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hq import cli as hq_cli
from cloud_sync.hq import store_keys
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.snapshot import write_snapshot
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.cli import main as agent_cli
from edge_agent.domain.token_codec import public_key_text
from edge_agent.errors import SnapshotError
from edge_agent.issuing import signing_key
from tests.cache.factories import write_snapshot as write_old_snapshot
from tests.hq.conftest import FMT, NOW, campaign
from tests.signing.factories import signer


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralStore]:
    with CentralStore.create(tmp_path / "hq.db", fmt=FMT) as store:
        store.create_campaign(campaign(), now=NOW)
        yield store


def _text(seed: int) -> str:
    return public_key_text(signer(seed=seed).public_key.public_bytes_raw())


def test_key_file_is_created_0600_never_overwritten_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "var" / "k.pem"
    info = signing_key.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(signing_key.KeyFileExistsError):
        signing_key.create(path)
    s = signing_key.load_signer(path, store_id="S1")
    assert s.key_id == info.key_id and len(info.key_id) == 8
    os.chmod(path, 0o644)
    with pytest.raises(signing_key.KeyFilePermissionError):
        signing_key.load(path)
    with pytest.raises(signing_key.KeyFileMissingError):
        signing_key.load(tmp_path / "none.pem")
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a key")
    bad.chmod(0o600)
    with pytest.raises(signing_key.KeyFileFormatError):
        signing_key.load(bad)


def test_agent_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[signing]\nkey_path = "{tmp_path / "k.pem"}"\n')
    assert agent_cli.main(["--config", str(config), "keys", "show"]) == 2
    assert "keys init" in capsys.readouterr().err
    assert agent_cli.main(["--config", str(config), "keys", "init"]) == 0
    created = capsys.readouterr().out
    assert agent_cli.main(["--config", str(config), "keys", "init"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert agent_cli.main(["--config", str(config), "keys", "show"]) == 0
    shown = capsys.readouterr().out
    key_line = next(line for line in shown.splitlines() if line.startswith("key id:"))
    assert key_line in created
    register = next(line for line in shown.splitlines() if "storeside-hq keys register" in line)
    # The printed HQ command registers the key as printed.
    db = tmp_path / "hq.db"
    assert hq_cli.main(["--db", str(db), "init"]) == 0
    argv = register.split("storeside-hq ", 1)[1].split()
    assert hq_cli.main(["--db", str(db), *argv]) == 0
    assert hq_cli.main(["--db", str(db), "keys", "list"]) == 0
    assert key_line.split()[-1] in capsys.readouterr().out


def test_hq_registry_register_revoke_list(central: CentralStore) -> None:
    key = store_keys.register(central, "S2", _text(2), now=NOW)
    assert key.key_id == signer(seed=2).key_id
    assert store_keys.register(central, "S2", _text(2), now=NOW) == key  # idempotent
    with pytest.raises(InputError, match="already registered"):
        store_keys.register(central, "S9", _text(2), now=NOW)
    with pytest.raises(InputError, match="public key"):
        store_keys.register(central, "S2", "not-a-key", now=NOW)
    revoked = store_keys.revoke(central, key.key_id, now=NOW)
    assert revoked.revoked_at == NOW
    with pytest.raises(InputError, match="no store key"):
        store_keys.revoke(central, "00000000", now=NOW)
    assert [k.key_id for k in store_keys.keys(central)] == [key.key_id]


def test_snapshot_ships_keys_and_the_store_trusts_them(
    central: CentralStore, tmp_path: Path
) -> None:
    s2, s3 = signer("S2", seed=2), signer("S3", seed=3)
    store_keys.register(central, "S2", _text(2), now=NOW)
    store_keys.register(central, "S3", _text(3), now=NOW)
    store_keys.revoke(central, s3.key_id, now=NOW)
    snap = tmp_path / "s1.db"
    write_snapshot(central, snap, "S1", now=NOW)
    cache = CodeCache.open(tmp_path / "c.db", store_id="S1")
    try:
        cache.load_snapshot(snap)
        keys = TrustedKeys(cache.conn)
        got2, got3 = keys.get(s2.key_id), keys.get(s3.key_id)
        assert got2 is not None and got2.store_id == "S2" and not got2.revoked
        assert got3 is not None and got3.revoked
        # An older snapshot (no store_keys table) still loads and leaves the keys alone.
        cache.load_snapshot(write_old_snapshot(tmp_path / "old.db", campaigns=[campaign()]))
        assert keys.get(s2.key_id) is not None
    finally:
        cache.close()


def test_snapshot_with_a_damaged_key_is_refused(central: CentralStore, tmp_path: Path) -> None:
    store_keys.register(central, "S2", _text(2), now=NOW)
    snap = tmp_path / "s1.db"
    write_snapshot(central, snap, "S1", now=NOW)
    conn = sqlite3.connect(snap)
    conn.execute("UPDATE store_keys SET public_key = ?", (bytes(32),))
    conn.commit()
    conn.close()
    cache = CodeCache.open(tmp_path / "c.db", store_id="S1")
    try:
        with pytest.raises(SnapshotError, match="store key"):
            cache.load_snapshot(snap)
    finally:
        cache.close()


def test_trusted_keys_see_changes_and_ignore_damaged_rows(tmp_path: Path) -> None:
    cache = CodeCache.open(tmp_path / "c.db", store_id="S1")
    try:
        s2 = signer("S2", seed=2)
        keys = TrustedKeys(cache.conn)
        assert keys.get(s2.key_id) is None
        keys.put(s2.public_key, store_id="S2", registered_at=NOW)
        first = keys.get(s2.key_id)
        assert first is not None and keys.get(s2.key_id) is first  # parsed once
        # Another connection revokes it: seen at the next lookup, no notification needed.
        other = sqlite3.connect(tmp_path / "c.db")
        other.execute("UPDATE store_keys SET revoked_at = 1")
        other.commit()
        got = keys.get(s2.key_id)
        assert got is not None and got.revoked
        other.execute(
            "UPDATE store_keys SET public_key = ?", (signer(seed=3).public_key.public_bytes_raw(),)
        )
        other.commit()
        other.close()
        assert keys.get(s2.key_id) is None  # key id no longer matches its key: not trusted
    finally:
        cache.close()
