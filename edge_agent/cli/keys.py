"""`edge-agent keys`: the store's coupon signing key.

``keys init`` creates the Ed25519 private key at ``signing.key_path`` (mode 0600; never
overwrites one). ``keys show`` prints its key id and public key, and the HQ command that
registers it, so every other store can verify this store's receipt coupons.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from config.model import AgentConfig
from edge_agent.cli.support import UsageError
from edge_agent.issuing import signing_key


def _print(info: signing_key.KeyInfo, cfg: AgentConfig, *, as_json: bool, verb: str) -> None:
    if as_json:
        doc = {
            "store_id": cfg.store.store_id,
            "key_id": info.key_id,
            "public_key": info.public_key,
            "path": str(info.path),
        }
        print(json.dumps(doc, indent=2))
        return
    print(f"{verb} {info.path}")
    print(f"key id:     {info.key_id}")
    print(f"public key: {info.public_key}")
    # "--": a base64url key may start with "-", which would otherwise read as an option.
    print(f"register at HQ: storeside-hq keys register {cfg.store.store_id} -- {info.public_key}")


def cmd_keys_init(args: argparse.Namespace, cfg: AgentConfig) -> int:
    try:
        info = signing_key.create(Path(cfg.signing.key_path))
    except signing_key.SigningKeyError as exc:
        raise UsageError(str(exc)) from None
    _print(info, cfg, as_json=args.json, verb="created")
    return 0


def cmd_keys_show(args: argparse.Namespace, cfg: AgentConfig) -> int:
    path = Path(cfg.signing.key_path)
    try:
        info = signing_key.info(path, signing_key.load(path))
    except signing_key.SigningKeyError as exc:
        raise UsageError(str(exc)) from None
    if args.public_key:
        print(info.public_key)
        return 0
    _print(info, cfg, as_json=args.json, verb="key file")
    return 0


def register(sub: Any) -> None:
    """Add ``keys init`` and ``keys show`` to the `edge-agent` parser's subparsers."""
    keys = sub.add_parser("keys", help="this store's coupon signing key")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    p = actions.add_parser("init", help="create the signing key (never overwrites one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_keys_init)
    p = actions.add_parser("show", help="print the key id and public key to register at HQ")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--public-key", action="store_true", help="print only the public key")
    p.set_defaults(func=cmd_keys_show)
