"""The agent's configuration: a closed schema.

Every section is a frozen pydantic model that rejects unknown keys, so a typo in a pushed
config is an error with the key's path, never a silently ignored setting. Every field has a
default, a bound and a description; ``config/agent.schema.json`` is generated from these models
(``edge-agent config schema``) and a test keeps it current.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from cloud_sync.contract.topics import level_fault
from config.base import Section
from config.points import PointsConfig
from config.presence import PresenceConfig
from config.printer import PrinterConfig
from config.receipt_offers import ReceiptOffersConfig
from config.signing import SigningConfig
from config.sync import SyncConfig
from edge_agent.domain.code_format import ALPHABET, BASE, MAX_BODY, CodeFormat

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class CodeFormatConfig(Section):
    prefix: Annotated[
        str,
        Field(
            min_length=1,
            max_length=6,
            pattern=r"^[A-Z0-9]+$",
            description="Brand prefix every code starts with (capitals and digits).",
        ),
    ] = "SS"
    namespace_length: Annotated[
        int,
        Field(
            ge=1,
            le=4,
            description="Width of the minter namespace block (31^n minters can mint offline).",
        ),
    ] = 2
    random_length: Annotated[
        int, Field(ge=6, le=20, description="Random characters per code (DOMAIN.md: 6 or more).")
    ] = 6

    @model_validator(mode="after")
    def _fits_check(self) -> CodeFormatConfig:
        if self.namespace_length + self.random_length + 1 > MAX_BODY:
            raise ValueError(f"namespace + random + check must be <= {MAX_BODY} characters")
        return self

    def to_format(self) -> CodeFormat:
        return CodeFormat(
            prefix=self.prefix,
            namespace_length=self.namespace_length,
            random_length=self.random_length,
        )


class StoreConfig(Section):
    store_id: Annotated[
        str, Field(min_length=1, max_length=64, description="This store's id as HQ knows it.")
    ] = "store-001"
    box_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="This box's id, unique across the chain: the source of its events "
            "and its broker username.",
        ),
    ] = "box-001"
    namespace: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=4,
            description="Optional cross-check only: the namespace HQ's registry assigned this "
            "store comes with its snapshot, and receipt coupons are minted there; if set, it "
            "must match the snapshot's or the box mints nothing. Unset by default.",
        ),
    ] = None

    @field_validator("store_id", "box_id")
    @classmethod
    def _topic_level(cls, value: str) -> str:
        # Both ids are levels of the box's MQTT topics (cloud_sync/contract/topics.py) and the
        # box id is its broker username: an id with '/', '+' or '#' would address other boxes.
        fault = level_fault(value)
        if fault is not None:
            raise ValueError(f"{value!r} cannot name a store or box: {fault}")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace_symbols(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bad = [ch for ch in value if ch not in ALPHABET]
        if bad:
            raise ValueError(f"namespace uses characters outside the code alphabet: {bad}")
        return value


class CacheConfig(Section):
    path: Annotated[
        str, Field(min_length=1, description="SQLite file of the store's code cache.")
    ] = "var/cache.db"
    checkpoint_interval_s: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="How often the WAL is checkpointed off the till's hot path.",
        ),
    ] = 30.0
    retention_days: Annotated[
        int,
        Field(
            ge=1,
            le=3650,
            description="Days of acknowledged event history and idempotency records kept.",
        ),
    ] = 30
    housekeeping_interval_s: Annotated[
        float,
        Field(gt=0, le=86_400, description="How often old rows are pruned, off the hot path."),
    ] = 300.0


class RedemptionConfig(Section):
    hold_seconds: Annotated[
        int,
        Field(
            ge=10,
            le=3600,
            description="How long a scanned code stays reserved for its till before payment.",
        ),
    ] = 300
    till_failure_limit: Annotated[
        int,
        Field(
            ge=1,
            le=1000,
            description="Failed validations per till within the window before it is throttled.",
        ),
    ] = 10
    till_failure_window_s: Annotated[
        int, Field(ge=1, le=86_400, description="Window for counting failed validations.")
    ] = 60
    till_cooldown_s: Annotated[
        int, Field(ge=1, le=86_400, description="How long a throttled till is refused.")
    ] = 120


class TillCredential(Section):
    till_id: Annotated[str, Field(min_length=1, max_length=64, description="The till's id.")]
    token_sha256: Annotated[
        str,
        Field(
            description="SHA-256 (hex) of the till's bearer token; the token itself is never "
            "stored in config.",
        ),
    ]

    @field_validator("token_sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256_HEX.match(value):
            raise ValueError("token_sha256 must be 64 lower-case hex characters")
        return value


class ApiConfig(Section):
    host: Annotated[
        str, Field(description="Address of the POS API (loopback unless the POS is remote).")
    ] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65_535, description="TCP port of the POS API.")] = 8470
    tills: Annotated[
        tuple[TillCredential, ...],
        Field(description="Tills allowed to call the API, each with its own token."),
    ] = ()

    @model_validator(mode="after")
    def _unique_tills(self) -> ApiConfig:
        ids = [t.till_id for t in self.tills]
        if len(ids) != len(set(ids)):
            raise ValueError("till_id values must be unique")
        hashes = [t.token_sha256 for t in self.tills]
        if len(hashes) != len(set(hashes)):
            raise ValueError("two tills share a token")
        return self


class AgentConfig(Section):
    code_format: CodeFormatConfig = CodeFormatConfig()
    store: StoreConfig = StoreConfig()
    cache: CacheConfig = CacheConfig()
    redemption: RedemptionConfig = RedemptionConfig()
    api: ApiConfig = ApiConfig()
    receipt_offers: ReceiptOffersConfig = ReceiptOffersConfig()
    printer: PrinterConfig = PrinterConfig()
    signing: SigningConfig = SigningConfig()
    sync: SyncConfig = SyncConfig()
    presence: PresenceConfig = PresenceConfig()
    points: PointsConfig = PointsConfig()

    @model_validator(mode="after")
    def _namespace_width(self) -> AgentConfig:
        namespace = self.store.namespace
        if namespace is not None and len(namespace) != self.code_format.namespace_length:
            raise ValueError(
                f"store.namespace must have code_format.namespace_length "
                f"({self.code_format.namespace_length}) characters"
            )
        return self


assert BASE == 31  # the namespace bound in CodeFormatConfig's description assumes it
