"""Wire shapes of the crypto-unit endpoints (for the OpenAPI document and the tests)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdminAuthorization",
    "AdminCredential",
    "AdminCredentialRequest",
    "CommandFile",
    "CommandResult",
    "ReencryptState",
    "UnitStatus",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Admin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="fingerprint of the administrator's public key")
    name: str
    algorithm: str


class RegisterStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    register_: str = Field(alias="register", description="new, current, pending or previous")
    state: str = Field(description="empty, partial, full, committed, active or retiring")
    epoch: int | None
    mkvp: str | None = Field(description="master-key verification pattern (hex)")
    scheme: str | None
    loaded: int
    needed: int
    kcvs: list[str]
    inMemory: bool


class AdminAuthorization(BaseModel):
    """An accepted ``authorize_admin`` command whose credential has not been made yet."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    principal: str


class UnitStatus(BaseModel):
    """A unit as custodians see it: no secrets."""

    model_config = ConfigDict(extra="forbid")

    unitId: str
    instanceId: str
    seal: str
    createdAt: str | None
    imprint: bool
    admins: list[Admin]
    signatureThreshold: int | None
    revocationThreshold: int | None
    seq: int = Field(description="the sequence number the next command must carry")
    registers: list[RegisterStatus]
    transcript: dict[str, Any] = Field(description="{entries, head}")
    sealed: bool
    tampered: bool = Field(description="the transcript failed its checks: the unit stays sealed")
    transportKey: str = Field(description="base64 ML-KEM-768 + X25519 public key for parts")
    transportKeyFingerprint: str
    rotationRemaining: int | None = Field(description="blobs still under the previous key")
    reencrypting: bool
    adminAuthorizations: list[AdminAuthorization] = Field(
        description="accepted authorize_admin commands whose credential is not made yet"
    )


class CommandFile(_Open):
    """A ``kyok-command/1`` file (``kyok ceremony ... --out``), plus ``sealedPart``."""

    format: str = Field(examples=["kyok-command/1"])
    unit: str
    seq: int
    command: str
    args: dict[str, Any]
    signatures: list[dict[str, str]]
    sealedPart: str | None = Field(default=None, description="base64; load_part only")


class CommandResult(_Open):
    """What the command did (depends on the command)."""


class ReencryptState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    running: bool
    rotationRemaining: int | None


class AdminCredentialRequest(_Open):
    """A signed ``authorize_admin`` command file, or ``{"authorizationSeq": n}`` to make the
    credential of an authorization accepted earlier (it is sealed to that command's recipient)."""

    authorizationSeq: int | None = None


class AdminCredential(BaseModel):
    """The new administrator; its API key is sealed to the command's recipient public key."""

    model_config = ConfigDict(extra="forbid")

    principalId: str
    authorizationSeq: int
    sealedApiKey: str = Field(
        description="base64 kyok hybrid seal (docs/formats.md) of the API key"
    )
