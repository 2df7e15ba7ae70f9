"""Bodies of the till's member routes (``member_routes.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from edge_agent.proximity.till_members import AtTill


class MemberCodeOut(BaseModel):
    code: str
    kind: Annotated[
        Literal["bound", "linked"],
        Field(description="bound: issued to the member; linked: tied to them at a till."),
    ]


class TappedMemberOut(BaseModel):
    member_id: str
    how: Annotated[
        Literal["token", "card"],
        Field(description="token: a signed member token (phone or card); card: an enrolled UID."),
    ]
    reader: str
    tapped_at: datetime


class TillMemberOut(BaseModel):
    till_id: str
    member: TappedMemberOut | None
    codes: Annotated[
        list[MemberCodeOut],
        Field(description="The member's unused, unexpired codes: validate them with the basket."),
    ]

    @classmethod
    def of(cls, till_id: str, who: AtTill, codes: list[MemberCodeOut]) -> TillMemberOut:
        member = TappedMemberOut(
            member_id=who.member_id,
            how="token" if who.how == "token" else "card",
            reader=who.reader,
            tapped_at=who.at,
        )
        return cls(till_id=till_id, member=member, codes=codes)
