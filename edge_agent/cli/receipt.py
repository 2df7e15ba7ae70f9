"""`edge-agent receipt ...`: preview the coupon layout, and look after the print queue.

    edge-agent receipt preview [--out coupon.png] [--profile TM-T88V] [--paper 80]
                               [--document doc.json] [--reprint] [--bytes coupon.prn]
    edge-agent receipt queue [--json]          jobs not yet printed
    edge-agent receipt status TXN [--json]     what the POS is told about a transaction's coupon
    edge-agent receipt reprint TXN             queue a reprint (marked REPRINT) of its coupon

The preview draws the exact bytes the layout sends to the printer (rendered through
python-escpos's ``Dummy``), so a template change can be checked without paper.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.model import AgentConfig
from config.printer import PrinterConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cli.support import UsageError, field_arg
from edge_agent.fields import Id
from edge_agent.printing import print_queue
from edge_agent.printing.document import CouponDocument, DocumentError, sample_document
from edge_agent.printing.layout import Layout, LayoutError
from edge_agent.printing.preview import write_png
from edge_agent.printing.profiles import ALIASES, KNOWN


def _printer_config(cfg: AgentConfig, profile: str | None, paper: int | None) -> PrinterConfig:
    if profile is None and paper is None:
        return cfg.printer
    model = profile or cfg.printer.profile
    known = KNOWN.get(ALIASES.get(model, model))
    width = paper or (known.paper_mm if known is not None else cfg.printer.paper_width_mm)
    try:
        return PrinterConfig.model_validate(
            {**cfg.printer.model_dump(), "profile": model, "paper_width_mm": width}
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise UsageError(f"--profile/--paper: {problems}") from None


def cmd_preview(args: argparse.Namespace, cfg: AgentConfig) -> int:
    printer = _printer_config(cfg, args.profile, args.paper)
    if args.document:
        try:
            doc = CouponDocument.from_json(Path(args.document).read_text(encoding="utf-8"))
        except (OSError, DocumentError) as exc:
            raise UsageError(f"--document {args.document}: {exc}") from None
        if args.reprint:
            doc = doc.as_reprint()
    else:
        doc = sample_document(reprint=args.reprint)
    try:
        data = Layout(printer).render(doc)
    except LayoutError as exc:
        raise UsageError(f"cannot lay out this coupon: {exc}") from None
    out = Path(args.out)
    write_png(data, printer.paper(), out)
    if args.bytes:
        Path(args.bytes).write_bytes(data)
    paper = printer.paper()
    qr = "native QR" if printer.use_native_qr() else "raster QR"
    print(
        f"{out}: {paper.name} {paper.paper_mm} mm, {paper.width_px} dots, {qr}, {len(data)} bytes"
    )
    return 0


def _open(cfg: AgentConfig) -> CodeCache:
    path = Path(cfg.cache.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return CodeCache.open(path, store_id=cfg.store.store_id, box_id=cfg.store.box_id)


def _job_dict(job: print_queue.PrintJob) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "till_id": job.till_id,
        "transaction_id": job.transaction_id,
        "code": job.code,
        "state": job.state.value,
        "reprint": job.document.reprint,
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at.isoformat(),
        "last_error": job.last_error,
    }


def cmd_queue(args: argparse.Namespace, cfg: AgentConfig) -> int:
    cache = _open(cfg)
    try:
        jobs = print_queue.open_jobs(cache.conn, limit=args.limit)
    finally:
        cache.close()
    if args.json:
        print(json.dumps([_job_dict(j) for j in jobs], indent=2))
        return 0
    if not jobs:
        print("print queue is empty")
    for j in jobs:
        mark = " REPRINT" if j.document.reprint else ""
        print(
            f"#{j.id} {j.till_id}/{j.transaction_id} {j.code} {j.state.value}{mark} "
            f"attempts {j.attempts} next {j.next_attempt_at:%H:%M:%S}"
            + (f"  ({j.last_error})" if j.last_error else "")
        )
    return 0


def cmd_status(args: argparse.Namespace, cfg: AgentConfig) -> int:
    cache = _open(cfg)
    try:
        st = print_queue.transaction_status(cache.conn, till_id=args.till, transaction_id=args.txn)
    finally:
        cache.close()
    if st is None:
        raise UsageError(
            f"no receipt coupon was queued for transaction {args.txn!r} of till {args.till!r}"
        )
    if args.json:
        body = {
            "till_id": st.till_id,
            "transaction_id": st.transaction_id,
            "code": st.code,
            "display_code": st.display_code,
            "status": st.status.value,
            "attempts": st.attempts,
            "last_error": st.last_error,
            "printed_at": None if st.printed_at is None else st.printed_at.isoformat(),
            "ever_printed": st.ever_printed,
            "qr_payload": st.qr_payload,
        }
        print(json.dumps(body, indent=2))
        return 0
    print(
        f"{st.till_id}/{st.transaction_id} {st.display_code}: {st.status.value} "
        f"(attempts {st.attempts})"
    )
    if st.last_error:
        print(f"  last error: {st.last_error}")
    return 0


def cmd_reprint(args: argparse.Namespace, cfg: AgentConfig) -> int:
    cache = _open(cfg)
    try:
        with cache.transaction() as conn:
            job = print_queue.reprint(
                conn, till_id=args.till, transaction_id=args.txn, now=datetime.now(UTC)
            )
    finally:
        cache.close()
    if job is None:
        raise UsageError(
            f"no receipt coupon was queued for transaction {args.txn!r} of till {args.till!r}"
        )
    print(f"reprint queued as job #{job} (the agent's print worker prints it)")
    return 0


def register(sub: Any) -> None:
    """Add `receipt` and its subcommands to the `edge-agent` parser's subparsers."""
    receipt = sub.add_parser("receipt", help="receipt coupons: preview, print queue, reprint")
    rsub = receipt.add_subparsers(dest="receipt_command", required=True)
    p = rsub.add_parser("preview", help="draw the coupon layout's exact bytes to a PNG")
    p.add_argument("--out", default="coupon.png", help="PNG to write (default coupon.png)")
    p.add_argument("--profile", help="printer model (default: printer.profile)")
    p.add_argument("--paper", type=int, choices=(58, 80), help="paper width in mm")
    p.add_argument("--document", help="a CouponDocument JSON file (default: a sample coupon)")
    p.add_argument("--reprint", action="store_true", help="show the REPRINT mark")
    p.add_argument("--bytes", help="also write the raw ESC/POS bytes to this file")
    p.set_defaults(func=cmd_preview)
    p = rsub.add_parser("queue", help="print jobs not yet printed")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)
    p = rsub.add_parser("status", help="print status of a sale's coupon")
    p.add_argument("txn", type=field_arg(Id, "TXN"))
    p.add_argument(
        "--till", required=True, type=field_arg(Id, "--till"), help="the till that made the sale"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = rsub.add_parser("reprint", help="queue a reprint of a sale's coupon")
    p.add_argument("txn", type=field_arg(Id, "TXN"))
    p.add_argument(
        "--till", required=True, type=field_arg(Id, "--till"), help="the till that made the sale"
    )
    p.set_defaults(func=cmd_reprint)
