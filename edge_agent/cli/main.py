"""``edge-agent``: the agent's command line, for staff on the box and for scripts.

Commands that touch codes open the store's cache directly (SQLite allows it beside a running
agent), so they work with the POS API down. Exit status: 0 done/accepted, 1 a code was refused,
2 the command itself was wrong (bad arguments, unreadable config, unknown code...).
``--json`` prints machine-readable output.

Arguments are checked with the POS API's own field definitions (``edge_agent.fields``), so the
CLI refuses what the API refuses (a transaction id with a space, an empty SKU, a quantity over
the maximum), as one line naming the argument, before anything is opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from config.load import ConfigError, json_schema, load_config
from config.model import AgentConfig
from edge_agent import log_setup
from edge_agent.api.auth import new_token, token_digest
from edge_agent.api.schemas import CodeStatusOut
from edge_agent.cli import keys as cli_keys
from edge_agent.cli import receipt as cli_receipt
from edge_agent.cli import sync as cli_sync
from edge_agent.cli.support import UsageError, field_arg
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.decision import Accepted, Decision, ValidationRequest
from edge_agent.errors import StoreError
from edge_agent.fields import (
    Category,
    FieldError,
    Id,
    MarginBand,
    MinorUnits,
    PositiveMinorUnits,
    Quantity,
    RawCode,
    check,
)
from edge_agent.redemption.outcomes import DecisionOut
from edge_agent.redemption.service import RedemptionService
from edge_agent.wiring import open_services, serve, utc_now


def parse_line(spec: str) -> BasketLine:
    """``SKU:CATEGORY:QTY:UNIT_PRICE[:BAND]``, price in minor units, e.g. ``milk:dairy:2:149``."""
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        raise UsageError(f"--line {spec!r}: expected SKU:CATEGORY:QTY:UNIT_PRICE[:BAND]")
    band_text = parts[4] if len(parts) == 5 else "B"
    try:
        sku = check(Id, parts[0], name="SKU")
        category = check(Category, parts[1], name="CATEGORY")
        qty = check(Quantity, parts[2], name="QTY")
        price = check(MinorUnits, parts[3], name="UNIT_PRICE")
        band = check(MarginBand, band_text, name="BAND")
    except FieldError as exc:
        raise UsageError(f"--line {spec!r}: {exc}") from None
    return BasketLine(sku=sku, category=category, quantity=qty, unit_price=price, margin_band=band)


def _request(args: argparse.Namespace, cfg: AgentConfig, *, txn: str | None) -> ValidationRequest:
    return ValidationRequest(
        codes=tuple(args.codes),
        store_id=cfg.store.store_id,
        till_id=args.till,
        cashier_id=args.cashier,
        basket=Basket(lines=tuple(args.line)),  # parsed and checked by parse_line
        now=utc_now(),
        member_id=args.member,
        transaction_id=txn,
    )


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _print_decisions(decisions: Sequence[Decision], as_json: bool, extra: list[str]) -> int:
    if as_json:
        print(json.dumps([DecisionOut.of(d).model_dump(mode="json") for d in decisions], indent=2))
    else:
        for d in decisions:
            if isinstance(d, Accepted):
                print(f"{d.code}: ACCEPTED  -{_money(d.discount)}  {d.cashier_message}")
            else:
                print(f"{d.code}: {d.reason.value}  {d.cashier_message}")
        for line in extra:
            print(line)
    return 0 if all(isinstance(d, Accepted) for d in decisions) else 1


def _with_service(cfg: AgentConfig, fn: Callable[[RedemptionService], int]) -> int:
    services = open_services(cfg, receipts=False)
    try:
        return fn(services.redemption)
    finally:
        services.close()


def cmd_validate(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        decisions = service.validate(_request(args, cfg, txn=None))
        return _print_decisions(decisions, args.json, [])

    return _with_service(cfg, run)


def cmd_redeem(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        outcomes = service.commit(_request(args, cfg, txn=args.txn))
        extra = [
            f"redeemed {o.redemption.code} on {o.redemption.transaction_id} "
            f"(event {o.redemption.event_id}, seq {o.redemption.seq})"
            for o in outcomes
            if o.redemption is not None
        ]
        return _print_decisions([o.decision for o in outcomes], args.json, extra)

    return _with_service(cfg, run)


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def cmd_status(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        view = service.status(args.code, utc_now())
        r = view.record
        if args.json:
            print(CodeStatusOut.of(view).model_dump_json(indent=2))  # the POS API's shape
            return 0
        owner = r.member_id or r.linked_member_id or "anyone"
        print(
            f"{r.code}  campaign {r.campaign_id}  for {owner}  {r.status.value}  uses {view.uses}"
        )
        for hold in view.holds:
            print(f"  held by till {hold.till_id} for {hold.transaction_id} until {hold.until}")
        for red in view.redemptions:
            print(
                f"  redeemed {red.redeemed_at:%Y-%m-%d %H:%M} at {red.store_id}/{red.till_id} "
                f"txn {red.transaction_id} -{_money(red.amount)}"
                + (f" (reversed {_money(red.reversed_amount)})" if red.reversed_amount else "")
            )
        for h in view.history:
            print(f"  #{h.seq} {h.occurred_at:%Y-%m-%d %H:%M:%S} {h.type} {h.transaction_id or ''}")
        return 0

    return _with_service(cfg, run)


def cmd_void(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        outcomes = service.void(
            transaction_id=args.txn,
            code=args.code,
            store_id=cfg.store.store_id,
            till_id=args.till,
            cashier_id=args.cashier,
            now=utc_now(),
        )
        for o in outcomes:
            print(f"{o.code}: {'released' if o.released else 'nothing held'}")
        return 0

    return _with_service(cfg, run)


def cmd_reverse(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        o = service.reverse(
            code=args.code,
            transaction_id=args.txn,
            sale_till_id=args.sale_till,
            return_id=args.return_id,
            amount=args.amount,
            store_id=cfg.store.store_id,
            till_id=args.till,
            cashier_id=args.cashier,
            now=utc_now(),
        )
        state = "fully reversed" if o.fully_reversed else f"{_money(o.remaining)} still credited"
        sale = f"{o.sale_till_id}/{o.transaction_id}"
        print(f"{o.code}: gave back {_money(o.amount)} on {sale}; {state}")
        return 0

    return _with_service(cfg, run)


def cmd_link(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        o = service.link(
            code=args.code,
            member_id=args.member,
            store_id=cfg.store.store_id,
            till_id=args.till,
            cashier_id=args.cashier,
            now=utc_now(),
        )
        print(f"{o.code} linked to {o.member_id}" + ("" if o.created else " (already)"))
        return 0

    return _with_service(cfg, run)


def cmd_load_snapshot(args: argparse.Namespace, cfg: AgentConfig) -> int:
    def run(service: RedemptionService) -> int:
        info = service.cache.load_snapshot(args.file)
        if args.json:
            _dump({**dataclasses.asdict(info), "created_at": info.created_at.isoformat()})
            return 0
        store = service.cache.store_id
        minting = (
            f"namespace {info.namespace} assigned to {store}"
            if info.namespace is not None
            else f"no minting namespace assigned to {store} (no receipt coupons)"
        )
        print(
            f"Loaded snapshot format {info.format_version} from HQ at "
            f"{info.created_at:%Y-%m-%d %H:%M} UTC: {info.codes:,} codes, "
            f"{info.campaigns:,} campaigns, {info.members:,} members; {minting}."
        )
        return 0

    return _with_service(cfg, run)


def cmd_serve(args: argparse.Namespace, cfg: AgentConfig) -> int:
    log_setup.configure(logging.INFO)
    return serve(cfg, config_path=args.config)


def cmd_till_token(args: argparse.Namespace, cfg: AgentConfig) -> int:
    if args.add and args.config is None:
        raise UsageError("till-token --add needs --config: the file the till is added to")
    if args.add and any(t.till_id == args.till_id for t in cfg.api.tills):
        raise UsageError(f"{args.config} already has till {args.till_id!r}; remove it first")
    token = new_token()
    entry = f'[[api.tills]]\ntill_id = "{args.till_id}"\ntoken_sha256 = "{token_digest(token)}"\n'
    print(f"token for {args.till_id} (give it to the till; it is not stored anywhere):")
    print(f"  {token}")
    if args.add:
        # The config file keeps only the token's SHA-256; the agent reads tills at start.
        text = args.config.read_text(encoding="utf-8")
        sep = "" if text.endswith("\n") or not text else "\n"
        args.config.write_text(f"{text}{sep}\n{entry}", encoding="utf-8")
        print(f"added till {args.till_id} to {args.config} (restart the agent to use it)")
        return 0
    print("add to the agent config:")
    print("".join(f"  {line}\n" for line in entry.splitlines()), end="")
    return 0


def cmd_config_schema(_: argparse.Namespace, __: AgentConfig) -> int:
    sys.stdout.write(json_schema())
    return 0


def cmd_config_check(_: argparse.Namespace, cfg: AgentConfig) -> int:
    print(f"config OK: store {cfg.store.store_id}, {len(cfg.api.tills)} till(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="agent config file (TOML); default: defaults")
    parser.add_argument(
        "--version",
        action="version",
        version=f"edge-agent {importlib.metadata.version('storeside')}",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def till_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--till",
            default="cli",
            type=field_arg(Id, "--till"),
            help="till id recorded on events (default: cli)",
        )
        p.add_argument(
            "--cashier",
            default="staff",
            type=field_arg(Id, "--cashier"),
            help="cashier id recorded on events",
        )

    def code_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("codes", nargs="+", metavar="CODE", type=field_arg(RawCode, "CODE"))
        p.add_argument(
            "--member", type=field_arg(Id, "--member"), help="the identified member's id"
        )
        p.add_argument(
            "--line",
            action="append",
            default=[],
            type=parse_line,
            metavar="SKU:CAT:QTY:PRICE[:BAND]",
            help="a basket line, price in minor units (repeat for each line)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        till_opts(p)

    txn, code = field_arg(Id, "--txn"), field_arg(RawCode, "CODE")
    p = sub.add_parser("serve", help="run the POS API")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("validate", help="check codes against a basket; changes nothing")
    code_opts(p)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("redeem", help="validate and redeem codes on a transaction")
    code_opts(p)
    p.add_argument("--txn", required=True, type=txn, help="the sale's transaction id")
    p.set_defaults(func=cmd_redeem)
    p = sub.add_parser("void", help="release a sale's holds (the sale of --till)")
    p.add_argument("--txn", required=True, type=txn)
    p.add_argument("code", nargs="?", type=code, help="one code; omit for all of the sale's")
    till_opts(p)
    p.set_defaults(func=cmd_void)
    p = sub.add_parser("reverse", help="give back a redeemed discount on a return")
    p.add_argument("code", type=code)
    p.add_argument("--txn", required=True, type=txn, help="the sale the code was redeemed on")
    p.add_argument(
        "--sale-till",
        type=field_arg(Id, "--sale-till"),
        help="the till that made that sale (default: --till)",
    )
    p.add_argument(
        "--return-id",
        required=True,
        type=field_arg(Id, "--return-id"),
        help="this return's own id at --till",
    )
    p.add_argument(
        "--amount",
        type=field_arg(PositiveMinorUnits, "--amount"),
        help="minor units to give back (default: all)",
    )
    till_opts(p)
    p.set_defaults(func=cmd_reverse)
    p = sub.add_parser("link", help="link a physical code to a member's next checkout")
    p.add_argument("code", type=code)
    p.add_argument("member", type=field_arg(Id, "MEMBER"))
    till_opts(p)
    p.set_defaults(func=cmd_link)
    p = sub.add_parser("status", help="a code's state, holds, redemptions and history")
    p.add_argument("code", type=code)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    _add_ops_commands(sub)
    cli_keys.register(sub)
    cli_receipt.register(sub)
    cli_sync.register(sub)
    return parser


def _add_ops_commands(sub: Any) -> None:
    p = sub.add_parser("load-snapshot", help="replace the cached codes with an HQ snapshot")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_load_snapshot)
    p = sub.add_parser("till-token", help="make a till token and its config line")
    p.add_argument("till_id", type=field_arg(Id, "TILL_ID"))
    p.add_argument("--add", action="store_true", help="append the till's entry to --config")
    p.set_defaults(func=cmd_till_token)
    cfg_parser = sub.add_parser("config", help="config tools")
    cfg_sub = cfg_parser.add_subparsers(dest="config_command", required=True)
    cfg_sub.add_parser("schema", help="print the JSON schema").set_defaults(func=cmd_config_schema)
    cfg_sub.add_parser("check", help="validate --config").set_defaults(func=cmd_config_check)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        # Staff commands log their warnings (no signing key, ...) in the agent's format too;
        # the server raises the level to INFO in ``cmd_serve``.
        log_setup.configure(logging.WARNING)
        cfg = load_config(args.config)
        result: int = args.func(args, cfg)
    except (ConfigError, UsageError, StoreError) as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
