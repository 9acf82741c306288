"""Wire models of the batch endpoints (for the OpenAPI document; bodies are parsed by hand)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kyok.kms.batch import MAX_ITEMS


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class BatchWrapItem(_Wire):
    plaintext: str = Field(description="the DEK, base64 (1 to 4,096 bytes)")
    aad: list[str] | None = Field(default=None, max_length=32)


class BatchWrapRequest(_Wire):
    items: list[BatchWrapItem] = Field(min_length=1, max_length=MAX_ITEMS)


class BatchUnwrapItem(_Wire):
    ciphertext: str = Field(description="a wrapped DEK, base64, as wrap returned it")
    aad: list[str] | None = Field(default=None, max_length=32)


class BatchUnwrapRequest(_Wire):
    items: list[BatchUnwrapItem] = Field(min_length=1, max_length=MAX_ITEMS)


class BatchGenerateRequest(_Wire):
    count: int = Field(ge=1, le=MAX_ITEMS, description="how many 32-byte DEKs to generate")
    aad: list[str] | None = Field(
        default=None, max_length=32, description="AAD bound to every DEK generated"
    )


class VersionRef(_Wire):
    id: str


class ItemError(_Wire):
    code: str = Field(description="the reason code, as a single call would answer it")
    message: str
    status: int = Field(description="the HTTP status a single call would have answered")


class BatchItemResult(_Wire):
    """One item's result: the single call's response fields, or ``error``."""

    ciphertext: str | None = None
    plaintext: str | None = None
    keyVersion: VersionRef | None = None
    rewrappedKeyVersion: VersionRef | None = None
    error: ItemError | None = None


class BatchResponse(_Wire):
    keyId: str = Field(description="the key's id (the call may have named it by alias)")
    keyVersion: VersionRef = Field(description="the key's newest version")
    count: int = Field(description="how many items the request held")
    failed: int = Field(description="how many of them failed (each has `error`)")
    items: list[BatchItemResult] = Field(description="one result per item, in request order")
