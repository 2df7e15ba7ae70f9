"""Who is at this till: the member an NFC tap identified, and the codes they can apply.

``GET /v1/tills/{till_id}/member`` answers the member tapped at the till's reader within
``presence.till_member_ttl_s`` (``member: null`` when nobody is), with the member's codes: bound
to them (receipt and proximity coupons, HQ's member offers) or linked to them at a till, unused
and unexpired. The POS validates those against the basket with ``/v1/validate`` as if scanned:
the cashier types nothing. ``DELETE`` clears it when the sale is done. A till asks about itself
only: the path's till must be the token's (403 ``other_till``), since knowing who stands at
another till is nobody's business at this one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from edge_agent.api.deps import Ctx, Till
from edge_agent.api.errors_doc import errors_doc
from edge_agent.api.member_schemas import MemberCodeOut, TillMemberOut
from edge_agent.errors import RequestError
from edge_agent.fields import Id

router = APIRouter(tags=["members"])
_ERRORS = errors_doc(401, 403, 422, 503)


class OtherTillError(RequestError):
    """A till asked about another till (answered 403)."""


def _own(path_till: str, token_till: str) -> None:
    if path_till != token_till:
        raise OtherTillError(
            f"this token is till {token_till!r}'s; it cannot ask about till {path_till!r}"
        )


@router.get("/v1/tills/{till_id}/member", response_model=TillMemberOut, responses=_ERRORS)
async def member_at_till(
    till_id: Annotated[Id, Path()], token_till: Till, ctx: Ctx
) -> TillMemberOut:
    """The member tapped at this till, and their codes to apply (none: ``member`` is null)."""
    _own(till_id, token_till)
    now = ctx.clock()
    who = None if ctx.till_members is None else ctx.till_members.at(till_id, now)
    if who is None:
        return TillMemberOut(till_id=till_id, member=None, codes=[])
    member_id = who.member_id
    codes = await ctx.db.run(lambda s: s.cache.member_codes(member_id, now))
    listed = [MemberCodeOut(code=c, kind="linked" if k == "linked" else "bound") for c, k in codes]
    return TillMemberOut.of(till_id, who, listed)


@router.delete("/v1/tills/{till_id}/member", response_model=TillMemberOut, responses=_ERRORS)
async def clear_member_at_till(
    till_id: Annotated[Id, Path()], token_till: Till, ctx: Ctx
) -> TillMemberOut:
    """The sale is done: this till has nobody until the next tap."""
    _own(till_id, token_till)
    if ctx.till_members is not None:
        ctx.till_members.clear(till_id)
    return TillMemberOut(till_id=till_id, member=None, codes=[])
