"""A simulated fleet's identities: made once, registered at HQ and the broker, kept in a file.

Theory of operation
-------------------
``provision(boxes, stores)`` makes ``boxes`` identities: box ``sim-box-00001`` ... spread
round-robin over stores ``sim-store-0001`` ..., each with a broker password
(``secrets.token_urlsafe``) and an Ed25519 key of its own. Key ids are 4-byte fingerprints
(``token_codec.key_id_of``) and HQ refuses a second key under an id it holds, so a key whose
id is already taken is drawn again (at 8,000 keys two would clash in ~1 run of 130).

Then, as an operator would for real boxes:

* ``register_keys`` trusts each public key as its box's store's in HQ's central store
  (``store_keys.register``), all in one transaction: ingest verifies every batch against it.
* ``broker_users`` is username (= box id, as the shipped ACL's ``%u`` patterns need) to
  password, for ``start_broker(users=...)`` / ``MosquittoBroker.add_user``, or
  ``add_to_password_file`` merges the hashes into a Mosquitto password file.
* ``write_users_file`` keeps everything the simulator needs (ids, passwords, private keys) in
  one JSON file of mode 0600, read back by ``read_users_file``. It holds secrets of simulated
  boxes only; nothing real signs with them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from cloud_sync.contract.topics import checked_id
from cloud_sync.fleet_sim.errors import UsersFileError
from cloud_sync.fleet_sim.sim_box import Identity
from cloud_sync.hq.broker.password_file import hash_password, read_password_file, write_hashes
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.hq_schema import transaction
from cloud_sync.hq.store_keys import register
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key

FILE_VERSION: Final = 1


def box_name(index: int) -> str:
    return f"sim-box-{index + 1:05d}"


def store_name(index: int) -> str:
    return f"sim-store-{index + 1:04d}"


def provision(boxes: int, stores: int, *, taken: Sequence[str] = ()) -> list[Identity]:
    """``boxes`` new identities over ``stores`` stores; no key id in ``taken`` or twice."""
    if boxes < 1 or stores < 1:
        raise ValueError("a fleet has at least one box and one store")
    used = set(taken)
    out = []
    for i in range(boxes):
        while True:
            key = Ed25519PrivateKey.generate()
            kid = key_id(key.public_key())
            if kid not in used:
                used.add(kid)
                break
        out.append(
            Identity(
                store_id=store_name(i % stores),
                box_id=box_name(i),
                password=secrets.token_urlsafe(16),
                key=key,
            )
        )
    return out


def register_keys(central: CentralStore, fleet: Sequence[Identity], *, now: datetime) -> None:
    """Trust each box's public key for its store (one transaction: a few ms for thousands)."""
    with transaction(central.conn):
        for ident in fleet:
            text = token_codec.public_key_text(raw_public_key(ident.key.public_key()))
            register(central, ident.store_id, text, now=now)


def broker_users(fleet: Sequence[Identity]) -> dict[str, str]:
    return {ident.box_id: ident.password for ident in fleet}


def add_to_password_file(path: Path, fleet: Sequence[Identity]) -> None:
    """Merge the boxes' hashes into Mosquitto's password file (then reload the broker)."""
    hashes = read_password_file(path) if path.exists() else {}
    hashes.update({ident.box_id: hash_password(ident.password) for ident in fleet})
    write_hashes(path, hashes)


def _private_hex(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


def write_users_file(path: Path, fleet: Sequence[Identity]) -> None:
    doc = {
        "version": FILE_VERSION,
        "boxes": [
            {
                "store_id": i.store_id,
                "box_id": i.box_id,
                "password": i.password,
                "private_key": _private_hex(i.key),
            }
            for i in fleet
        ],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=1)
        out.write("\n")


def read_users_file(path: Path) -> list[Identity]:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsersFileError(f"{path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsersFileError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        raise UsersFileError(f"{path}: not a version {FILE_VERSION} fleet users file")
    fleet = []
    for n, row in enumerate(doc.get("boxes", []), start=1):
        try:
            fleet.append(
                Identity(
                    store_id=checked_id("store_id", row["store_id"]),
                    box_id=checked_id("box_id", row["box_id"]),
                    password=str(row["password"]),
                    key=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row["private_key"])),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsersFileError(f"{path}: box {n}: {exc!r}") from exc
    if not fleet:
        raise UsersFileError(f"{path}: no boxes")
    return fleet
