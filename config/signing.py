"""Signing of receipt QR coupon tokens with the store's Ed25519 key.

The key itself is loaded by ``edge_agent/issuing/signing_key.py``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from config.base import Section


class SigningConfig(Section):
    key_path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            description=(
                "This store's Ed25519 private key file (PEM, mode 0600), created by "
                "`edge-agent keys init`."
            ),
        ),
    ] = "var/store-signing.key"
    trust_own_key: Annotated[
        bool,
        Field(
            description=(
                "Honour coupons signed with this store's own key before HQ has registered it "
                "(a key HQ has revoked is refused all the same)."
            )
        ),
    ] = True
