"""Brand-supplied and generic literal codes have no check character: looked up verbatim."""

from __future__ import annotations

from edge_agent.domain.decision import Accepted, Reason, Refused
from tests.domain.factories import facts, one, request


def test_known_literal_code_is_validated_as_typed_in_any_case() -> None:
    known = {"HOLIMAN100": facts("HOLIMAN100", member_id=None)}
    decision = one(request("holiman-100"), known)
    assert isinstance(decision, Accepted)
    assert decision.code == "HOLIMAN100"


def test_unknown_literal_is_still_malformed_with_the_format_hint() -> None:
    known = {"HOLIMAN100": facts("HOLIMAN100", member_id=None)}
    decision = one(request("HOLIMAN10"), known)
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.MALFORMED
