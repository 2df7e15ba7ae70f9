"""Signing of QR coupon tokens. (Initial shape; the signing work extends it.)"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from config.base import Section


class SigningConfig(Section):
    key_path: Annotated[
        str, Field(min_length=1, description="This store's Ed25519 private key file.")
    ] = "var/store-signing.key"
