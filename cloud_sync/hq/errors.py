"""Typed failures of HQ's code store, minting, import/export and snapshots.

Every one of these is a user-facing mistake or a state that refuses the request (an unknown
campaign, a duplicate code, a full namespace registry). The CLI prints ``str(exc)`` on one line
and exits 2; anything else escaping is a bug and keeps its traceback.

    HqError                         base of everything raised by ``cloud_sync``
    ├── StoreFileError              the HQ database is missing, not ours, or from a newer version
    ├── InputError                  a file or value given by the user cannot be used (bad CSV,
    │                               bad campaign JSON, bad option)
    ├── UnknownCampaignError        no campaign with that id
    ├── CampaignExistsError         a campaign with that id is already defined
    ├── CampaignEndedError          minting for a campaign whose end has passed
    ├── UnknownCodeError            revoke/link of a code HQ does not know
    ├── CodeExistsError             a literal (generic) code that is already taken
    ├── UnknownMemberError          binding a code (or an identity) to a member HQ does not know
    ├── NoConsentError              enrolling a presence identity for a member without
    │                               proximity consent
    ├── IdentityTakenError          a beacon tag or card already enrolled for another member
    └── NamespaceExhaustedError     every namespace of the code format is assigned
"""

from __future__ import annotations

from pydantic import ValidationError


class HqError(Exception):
    """Base of every error raised by cloud_sync."""


class StoreFileError(HqError):
    """The HQ database file cannot be used."""


class InputError(HqError):
    """A user-supplied file or value that cannot be used."""


class UnknownCampaignError(HqError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id!r}")
        self.campaign_id = campaign_id


class CampaignExistsError(HqError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} already exists (use --replace to redefine it)")
        self.campaign_id = campaign_id


class CampaignEndedError(HqError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} has ended; codes for it would never work")
        self.campaign_id = campaign_id


class UnknownCodeError(HqError):
    def __init__(self, code: str) -> None:
        super().__init__(f"no code {code!r}")
        self.code = code


class CodeExistsError(HqError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"code {code!r} cannot be created: {reason}")
        self.code = code


class UnknownMemberError(HqError):
    def __init__(self, member_id: str) -> None:
        super().__init__(f"no member {member_id!r}")
        self.member_id = member_id


class NoConsentError(HqError):
    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"member {member_id!r} has not given proximity consent: no presence identity is "
            "enrolled for them (import them with proximity_consent=1 first)"
        )
        self.member_id = member_id


class IdentityTakenError(HqError):
    def __init__(self, what: str, member_id: str) -> None:
        super().__init__(f"{what} is already enrolled for member {member_id!r}; unenrol it first")
        self.member_id = member_id


class NamespaceExhaustedError(HqError):
    """All ``31 ** namespace_length`` namespaces are assigned; a longer format is needed."""


def validation_problems(exc: ValidationError) -> str:
    """Every error of a pydantic validation as ``key.path: what is wrong``, on one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )
