"""JSON as the wire contract speaks it: one canonical text out, one strict reading in.

Every message of the contract (the event envelope, batches, acks, resend requests, state and
health) is one JSON object (RFC 8259). Writing: ``CANONICAL`` sorts keys, uses no whitespace
and refuses NaN and infinities (not JSON), so one value has one text, which is what is hashed
and signed. Reading: ``load_object`` refuses what two JSON readers could understand
differently (a key given twice: the first wins in some, the last in others, so one reader
could verify what another stores) and what is not JSON at all (NaN, Infinity), and maps every
failure of the parser, including a document nested deeper than its stack, to the caller's
"malformed" error: a decoder of the contract raises only its own typed errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

# Built once: json.dumps with these options would build an encoder on every call.
CANONICAL: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False)


class _RefusedError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise _RefusedError("a key appears twice in one object")
    return doc


def _no_constant(name: str) -> None:
    raise _RefusedError(f"{name} is not JSON")


# Built once too: ``json.loads`` with any option builds a decoder and its C scanner on every
# call, which cost ~28 us of the ~35 us a 500-byte event took to read (HQ reads every event).
_STRICT: Final = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def load(data: str | bytes, *, malformed: Callable[[str], Exception]) -> object:
    """The JSON value in ``data`` (text, or its UTF-8 bytes); ``malformed(why)`` raised if none."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _STRICT.decode(text)
    except _RefusedError as exc:
        raise malformed(str(exc)) from None
    except RecursionError:
        raise malformed("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise malformed(f"not UTF-8 JSON text: {exc}") from None
