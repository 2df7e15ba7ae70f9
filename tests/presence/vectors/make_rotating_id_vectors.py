"""Write ``rotating_id.json``: test vectors for the member app's rotating identifier.

Run ``python -m tests.presence.vectors.make_rotating_id_vectors`` from the repository root.
The keys are made here from a public label (SHA-256 of "storeside rotating-id test key N"),
so they are reproducible and are not anyone's secret. The instants cover period boundaries
(the last second of one period, the first of the next), three exponents and the tx power.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from reference.member_app.rotating_id import advertised

OUT = Path(__file__).with_name("rotating_id.json")
INSTANTS = (
    "2026-03-01T12:00:00+00:00",
    "2026-03-01T11:58:55+00:00",  # the last second of counter 6923305 at K = 8
    "2026-03-01T11:58:56+00:00",  # the first second of counter 6923306
    "2026-03-01T13:00:00+01:00",  # the same instant as the first, another offset
    "2030-12-31T23:59:59+00:00",
)
CASES = ((8, 127), (4, -59), (10, -12))


def vector_key(number: int) -> bytes:
    return hashlib.sha256(f"storeside rotating-id test key {number}".encode()).digest()[:16]


def vectors() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for number in range(3):
        key = vector_key(number)
        for exponent, tx_power in CASES:
            for text in INSTANTS:
                at = datetime.fromisoformat(text)
                ad = advertised(key, at, exponent=exponent, tx_power=tx_power)
                out.append(
                    {
                        "key": key.hex(),
                        "at": text,
                        "unix_seconds": int(at.astimezone(UTC).timestamp()),
                        "exponent": exponent,
                        "tx_power": tx_power,
                        "counter": ad.counter,
                        "rotating_id": ad.rotating_id,
                        "service_data": ad.service_data,
                        "advertising_data": ad.advertising_data,
                    }
                )
    return out


def main() -> None:
    document = {
        "about": (
            "Test vectors for docs/rotating-identifier.md: id = HMAC-SHA256(key, "
            "'storeside/rotating-id/v1' || K || counter as 8 bytes BE)[0:8], counter = "
            "floor(unix_seconds / 2^K). Keys: SHA-256('storeside rotating-id test key N')[0:16]. "
            "Made by tests/presence/vectors/make_rotating_id_vectors.py."
        ),
        "service_uuid": "3df32698-5280-484e-a16c-385bc4902b45",
        "vectors": vectors(),
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
