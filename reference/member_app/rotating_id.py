"""Reference generator for the member app's rotating identifier (the phone's side).

Run ``python -m reference.member_app.rotating_id --key HEX --at ISO`` to print the counter,
the identifier, the service-data payload and the whole advertising data a phone holding that
key broadcasts at that instant. It calls the same ``cloud_sync.contract.rotating_id`` the box
resolves with, so an app that matches its output (and ``tests/presence/vectors``) interoperates.
See ``docs/rotating-identifier.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from cloud_sync.contract.rotating_id import (
    DEFAULT_EXPONENT,
    KEY_BYTES,
    MEMBER_SERVICE_UUID,
    TX_POWER_UNKNOWN,
    advertisement_bytes,
    counter_at,
    encode_frame,
    period_start,
    rotating_id,
)


@dataclass(frozen=True, slots=True)
class Advertised:
    counter: int
    period_start: str
    period_end: str
    rotating_id: str
    service_uuid: str
    service_data: str
    advertising_data: str


def advertised(
    key: bytes, at: datetime, *, exponent: int = DEFAULT_EXPONENT, tx_power: int = TX_POWER_UNKNOWN
) -> Advertised:
    """What the phone advertises at ``at`` (hex strings, ISO times)."""
    counter = counter_at(at, exponent)
    identifier = rotating_id(key, counter, exponent)
    payload = encode_frame(identifier, tx_power)
    start = period_start(counter, exponent)
    return Advertised(
        counter=counter,
        period_start=start.isoformat(),
        period_end=(start + timedelta(seconds=2**exponent)).isoformat(),
        rotating_id=identifier.hex(),
        service_uuid=MEMBER_SERVICE_UUID,
        service_data=payload.hex(),
        advertising_data=advertisement_bytes(payload).hex(),
    )


def _key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not hex") from None
    if len(key) != KEY_BYTES:
        raise argparse.ArgumentTypeError(f"a key is {KEY_BYTES} bytes ({2 * KEY_BYTES} hex)")
    return key


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (e.g. Z or +01:00)")
    return at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference.member_app.rotating_id", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--key", type=_key, required=True, help="the member's 16-byte key, hex")
    parser.add_argument(
        "--at", type=_instant, default=None, help="ISO 8601 instant with offset (default: now)"
    )
    parser.add_argument("--exponent", type=int, default=DEFAULT_EXPONENT, help="K: 2^K s period")
    parser.add_argument(
        "--tx-power", type=int, default=TX_POWER_UNKNOWN, help="dBm at 1 m (127: unknown)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    at = args.at if args.at is not None else datetime.now(UTC)
    try:
        out = advertised(args.key, at, exponent=args.exponent, tx_power=args.tx_power)
    except ValueError as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps(asdict(out), indent=2))
    else:
        for name, value in asdict(out).items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
