"""LUKS passphrases for Hyper Protect data volumes (reference hpcr-contract.md §6).

Two seeds, as the HPVS image computes it: the workload persona puts one seed in
``workload.volumes.<v>.seed``, the deployer another in ``env.volumes.<v>.seed``, and the
passphrase is the lowercase hex SHA-256 of their UTF-8 concatenation (the docs' own check is
``echo -n "seed1seed2" | sha256sum``). IBM's pages call the env seed *seed1* and the workload seed
*seed2* but never state the order in words, so the order is a parameter whose default is
env ‖ workload (:class:`SeedOrder`).

Three seeds, kyok's variant of IBM's KMS option: a random 32-byte third seed is wrapped with a
kyok root key, only the wrapped form is kept (a :class:`WrappedSeed` file), and the passphrase is::

    interim    = two_seed_passphrase(env_seed, workload_seed, order)          # 64 hex characters
    third_seed = kms.unwrap(key_id, wrapped, aad = ("kyok/v1/luks-third-seed", "volume=<v>", …))
    passphrase = hex(HKDF-SHA256(ikm  = third_seed,
                                 salt = ASCII(interim),
                                 info = "kyok/v1/luks-three-seed" ‖ 0x00 ‖ ASCII(<v>),
                                 length = 32))                               # 64 hex characters

The third seed is the input keying material because it is the one input with full entropy: even
an attacker who knows both contract seeds learns nothing about the passphrase while the root key
withholds the third seed (suspend or destroy the key and the volume is crypto-shredded). If the
third seed ever leaked, the passphrase would still need both contract seeds, exactly as in the
two-seed scheme. The volume name in ``info`` gives each volume its own passphrase, and the AAD
binds the wrapped seed to its volume, so a wrapped seed copied into another volume's file does not
unwrap. IBM does not publish its own combination, so this is not interoperable with an HPVS
volume that uses ``env.volumes.<v>.kms``; it is kyok's, documented in docs/contract-attestation.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from kyok.contract.token import ContractError
from kyok.crypto.kdf import hkdf_sha256
from kyok.errors import Conflict

__all__ = [
    "LEGACY_MIN_SEED_LENGTH",
    "MIN_SEED_LENGTH",
    "THIRD_SEED_SIZE",
    "KmsWrapped",
    "SeedError",
    "SeedKms",
    "SeedOrder",
    "ThirdSeedUnavailable",
    "WrappedSeed",
    "WrappedSeedError",
    "check_seed",
    "check_volume_name",
    "combine_seeds",
    "new_third_seed",
    "seed_aad",
    "three_seed_passphrase",
    "two_seed_passphrase",
]

#: Seeds in contract schema 1.0.116 (and IBM's docs since March 2026): at least 15 characters of
#: letters, digits and ``!@#$%^&*(),.?":{}|<>_-``; no spaces.
MIN_SEED_LENGTH = 15
_SEED = re.compile(r'[a-zA-Z0-9!@#$%^&*(),.?":{}|<>_-]{15,}')
#: The older schema asked only for three characters (any), so older volumes may have such seeds.
LEGACY_MIN_SEED_LENGTH = 3
#: A volume's key in ``workload.volumes`` / ``env.volumes`` (the schema's pattern).
_VOLUME = re.compile(r"[a-z_][a-z0-9_-]*")
_MAX_VOLUME = 128

THIRD_SEED_SIZE = 32
_INFO = b"kyok/v1/luks-three-seed"
_AAD_PURPOSE = "kyok/v1/luks-third-seed"
_FORMAT = "kyok-luks-third-seed"
_FORMAT_VERSION = 1


class SeedError(ContractError):
    """A seed or a volume name is missing or does not meet the contract schema's rules."""

    code = "CONTRACT_SEED_ERR"


class WrappedSeedError(ContractError):
    """A wrapped-seed file is malformed, or the KMS gave back something that is not the seed."""

    code = "CONTRACT_WRAPPED_SEED_ERR"


class ThirdSeedUnavailable(Conflict):
    """The KMS refused to unwrap the third seed (the root key is suspended, gone, or wrong).

    While this holds no passphrase can be derived: that is the crypto-shredding guarantee.
    """

    code = "CONTRACT_THIRD_SEED_UNAVAILABLE_ERR"


class SeedOrder(StrEnum):
    """Which contract seed comes first in the concatenation that is hashed."""

    ENV_WORKLOAD = "env-workload"  # seed1 = env (deployer), seed2 = workload: the docs' labels
    WORKLOAD_ENV = "workload-env"


def check_seed(seed: str, *, what: str = "seed", legacy: bool = False) -> str:
    """Check a contract seed against the schema's rules and return it unchanged.

    Args:
        seed: the seed text.
        what: how to name it in an error, e.g. ``"env seed"``.
        legacy: accept the older rule (any characters, at least three), for volumes made
            before schema 1.0.116.

    Raises:
        SeedError: the seed is not a string, too short, or has characters the schema forbids.
    """
    if not isinstance(seed, str):
        raise SeedError(f"the {what} must be text")
    if legacy:
        if len(seed) < LEGACY_MIN_SEED_LENGTH:
            raise SeedError(
                f"the {what} has {len(seed)} characters; even the older contract schema "
                f"requires at least {LEGACY_MIN_SEED_LENGTH}"
            )
        return seed
    if len(seed) < MIN_SEED_LENGTH:
        raise SeedError(
            f"the {what} has {len(seed)} characters; the contract schema requires at least "
            f"{MIN_SEED_LENGTH} (use --legacy-seeds for a volume made under the older rule)"
        )
    if not _SEED.fullmatch(seed):
        raise SeedError(
            f"the {what} has characters the contract schema does not allow: use letters, "
            'digits and !@#$%^&*(),.?":{}|<>_- only, no spaces (or --legacy-seeds for a volume '
            "made under the older rule)"
        )
    return seed


def check_volume_name(volume: str) -> str:
    """Check a volume's key (``^[a-z_][a-z0-9-_]*$``, as in the contract schema).

    Raises:
        SeedError: the name does not match.
    """
    if not isinstance(volume, str) or len(volume) > _MAX_VOLUME or not _VOLUME.fullmatch(volume):
        raise SeedError(
            "the volume name must be the volume's key in the contract: lowercase letters, digits, "
            "'-' and '_', starting with a letter or '_'"
        )
    return volume


def two_seed_passphrase(
    env_seed: str,
    workload_seed: str,
    *,
    order: SeedOrder = SeedOrder.ENV_WORKLOAD,
    legacy: bool = False,
) -> str:
    """The LUKS passphrase HPVS derives from the two contract seeds of a volume.

    Args:
        env_seed: ``env.volumes.<v>.seed`` (the deployer's).
        workload_seed: ``workload.volumes.<v>.seed`` (the workload provider's).
        order: which seed comes first (default env ‖ workload; see the module docstring).
        legacy: accept seeds that follow only the older schema rule.

    Returns:
        ``sha256(utf8(first ‖ second))`` as 64 lowercase hex characters.

    Raises:
        SeedError: a seed breaks the schema's rules.
    """
    check_seed(env_seed, what="env seed", legacy=legacy)
    check_seed(workload_seed, what="workload seed", legacy=legacy)
    order = SeedOrder(order)
    first, second = (
        (env_seed, workload_seed) if order is SeedOrder.ENV_WORKLOAD else (workload_seed, env_seed)
    )
    return hashlib.sha256((first + second).encode("utf-8")).hexdigest()


def combine_seeds(interim: str, third_seed: bytes, *, volume: str) -> str:
    """kyok's three-seed passphrase from the two-seed value and the unwrapped third seed.

    ``hex(HKDF-SHA256(ikm=third_seed, salt=ASCII(interim), info="kyok/v1/luks-three-seed" ‖ 0x00
    ‖ ASCII(volume), length=32))``.

    Args:
        interim: the result of :func:`two_seed_passphrase` (64 lowercase hex characters).
        third_seed: the 32-byte third seed.
        volume: the volume's key in the contract.

    Raises:
        SeedError: ``interim`` is not a two-seed passphrase, or the volume name is invalid.
        WrappedSeedError: the third seed is not 32 bytes.
    """
    if not isinstance(interim, str) or not re.fullmatch(r"[0-9a-f]{64}", interim):
        raise SeedError("the interim value must be a two-seed passphrase (64 lowercase hex)")
    check_volume_name(volume)
    if not isinstance(third_seed, bytes | bytearray) or len(third_seed) != THIRD_SEED_SIZE:
        raise WrappedSeedError(
            f"the third seed must be {THIRD_SEED_SIZE} bytes: the wrapped-seed file does not hold "
            "a seed kyok made"
        )
    okm = hkdf_sha256(
        bytes(third_seed),
        salt=interim.encode("ascii"),
        info=_INFO + b"\x00" + volume.encode("ascii"),
        length=32,
    )
    return okm.hex()


def seed_aad(volume: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The AAD a third seed is wrapped with: the purpose, the volume, then ``extra``.

    Raises:
        SeedError: the volume name is invalid, or ``extra`` is not a sequence of strings.
    """
    check_volume_name(volume)
    if isinstance(extra, str) or not all(isinstance(a, str) for a in extra):
        raise SeedError("extra AAD must be a list of strings")
    return (_AAD_PURPOSE, f"volume={volume}", *extra)


@dataclass(frozen=True)
class KmsWrapped:
    """What a :class:`SeedKms` returns from ``wrap``: the ciphertext and, if known, the key
    version that made it."""

    ciphertext: str
    key_version: str | None = None


class SeedKms(Protocol):
    """The two KMS calls the three-seed scheme needs (the CLI adapts ``KyokClient``).

    ``wrap`` may return the ciphertext alone (a ``str``) or a :class:`KmsWrapped` that also names
    the key version. ``unwrap`` returns the plaintext; it should raise
    :class:`ThirdSeedUnavailable` when the key refuses (suspended, deactivated, destroyed).
    """

    def wrap(self, key_id: str, plaintext: bytes, *, aad: Sequence[str]) -> str | KmsWrapped:
        """Wrap ``plaintext`` with the root key ``key_id``, binding ``aad``."""
        ...

    def unwrap(self, key_id: str, wrapped: str, *, aad: Sequence[str]) -> bytes:
        """Unwrap what :meth:`wrap` returned, with the same ``aad``."""
        ...


@dataclass(frozen=True)
class WrappedSeed:
    """A volume's third seed, wrapped by a root key: what the wrapped-seed file holds.

    The wrapped form is useless without the root key, so it may be stored next to the volume
    (IBM keeps its equivalent on the volume's metadata partition). Keep the file anyway: without
    it the passphrase is lost, just as without the key.

    Attributes:
        volume: the volume's key in the contract (bound into the AAD and the derivation).
        key_id: the root key's id (or alias) that wrapped the seed.
        wrapped: the KMS ciphertext of the 32-byte seed.
        aad: the AAD it was wrapped with (:func:`seed_aad`), needed again to unwrap.
        key_version: the key version that wrapped it, when the KMS said so.
        created_at: when it was made (RFC 3339, UTC).
    """

    volume: str
    key_id: str
    wrapped: str
    aad: tuple[str, ...]
    key_version: str | None = None
    created_at: str | None = None

    def __post_init__(self) -> None:
        check_volume_name(self.volume)
        if not isinstance(self.key_id, str) or not self.key_id.strip():
            raise WrappedSeedError("the wrapped seed names no key id")
        if (
            not isinstance(self.wrapped, str)
            or not self.wrapped
            or any(c.isspace() for c in self.wrapped)
        ):
            raise WrappedSeedError("the wrapped seed's ciphertext is empty or has white space")
        if not isinstance(self.aad, tuple) or not all(isinstance(a, str) for a in self.aad):
            raise WrappedSeedError("the wrapped seed's AAD must be a list of strings")
        if self.aad[:2] != seed_aad(self.volume):
            raise WrappedSeedError(
                f"the wrapped seed's AAD does not start with {list(seed_aad(self.volume))}: the "
                "file was not made for this volume (or was edited)"
            )
        for name in ("key_version", "created_at"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise WrappedSeedError(f"the wrapped seed's {name} must be text")

    @property
    def extra_aad(self) -> tuple[str, ...]:
        """The caller's AAD, after the purpose and the volume."""
        return self.aad[2:]

    def rewrapped(self, wrapped: str, key_version: str | None) -> WrappedSeed:
        """The same seed under a newer key version (after the KMS rewrapped it)."""
        return replace(self, wrapped=wrapped, key_version=key_version)

    def to_json(self) -> str:
        """The file's text: a JSON object, keys sorted, ending in a newline."""
        data: dict[str, Any] = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "volume": self.volume,
            "keyId": self.key_id,
            "keyVersion": self.key_version,
            "aad": list(self.aad),
            "wrappedSeed": self.wrapped,
            "seedBytes": THIRD_SEED_SIZE,
            "createdAt": self.created_at,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> WrappedSeed:
        """Read a wrapped-seed file's text (strictly: unknown or missing fields are errors).

        Raises:
            WrappedSeedError: not JSON, another format or version, or a field is wrong.
        """
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise WrappedSeedError("the wrapped-seed file is not JSON") from None
        if not isinstance(data, dict):
            raise WrappedSeedError("the wrapped-seed file is not a JSON object")
        if data.get("format") != _FORMAT:
            raise WrappedSeedError(f"not a kyok wrapped-seed file (its format is not {_FORMAT!r})")
        if data.get("version") != _FORMAT_VERSION:
            raise WrappedSeedError(
                f"wrapped-seed file version {data.get('version')!r} is not supported "
                f"(this kyok reads version {_FORMAT_VERSION}; upgrade kyok)"
            )
        known = {
            "format",
            "version",
            "volume",
            "keyId",
            "keyVersion",
            "aad",
            "wrappedSeed",
            "seedBytes",
            "createdAt",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise WrappedSeedError(f"the wrapped-seed file has unknown fields: {unknown}")
        missing = sorted({"volume", "keyId", "aad", "wrappedSeed", "seedBytes"} - set(data))
        if missing:
            raise WrappedSeedError(f"the wrapped-seed file lacks the fields {missing}")
        if data["seedBytes"] != THIRD_SEED_SIZE:
            raise WrappedSeedError(f"the wrapped-seed file's seedBytes must be {THIRD_SEED_SIZE}")
        aad = data["aad"]
        if not isinstance(aad, list):
            raise WrappedSeedError("the wrapped-seed file's aad must be a list of strings")
        for name in ("volume", "keyId", "wrappedSeed"):
            if not isinstance(data[name], str):
                raise WrappedSeedError(f"the wrapped-seed file's {name} must be text")
        return cls(
            volume=data["volume"],
            key_id=data["keyId"],
            wrapped=data["wrappedSeed"],
            aad=tuple(aad),
            key_version=data.get("keyVersion"),
            created_at=data.get("createdAt"),
        )


def _ciphertext_of(result: object) -> KmsWrapped:
    if isinstance(result, KmsWrapped):
        return result
    if isinstance(result, str):
        return KmsWrapped(result)
    raise TypeError("SeedKms.wrap must return a str or a KmsWrapped")


def new_third_seed(
    kms: SeedKms,
    key_id: str,
    *,
    volume: str,
    aad: Sequence[str] = (),
    now: datetime | None = None,
) -> WrappedSeed:
    """Make a random third seed for ``volume``, wrap it with ``key_id`` and check the round trip.

    The seed exists in memory only: it is wrapped at once and then unwrapped again to prove
    that the file will work before anyone encrypts a disk with it.

    Args:
        kms: wraps and unwraps (e.g. the CLI's adapter over ``KyokClient``).
        key_id: the root key's id or alias.
        volume: the volume's key in the contract.
        aad: extra AAD strings, stored in the file and needed again (with the file) to unwrap.
        now: the creation time to record (default: now).

    Returns:
        The wrapped seed; save it with :meth:`WrappedSeed.to_json`.

    Raises:
        SeedError: a bad volume name or AAD.
        WrappedSeedError: the KMS gave back a different seed.
        Whatever ``kms`` raises (e.g. :class:`ThirdSeedUnavailable`).
    """
    if not isinstance(key_id, str) or not key_id.strip():
        raise SeedError("give the root key's id (or alias) that wraps the third seed")
    full_aad = seed_aad(volume, aad)
    seed = secrets.token_bytes(THIRD_SEED_SIZE)
    made = _ciphertext_of(kms.wrap(key_id, seed, aad=full_aad))
    back = kms.unwrap(key_id, made.ciphertext, aad=full_aad)
    if not hmac.compare_digest(bytes(back), seed):
        raise WrappedSeedError("the KMS unwrapped the new third seed to different bytes")
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return WrappedSeed(
        volume=volume,
        key_id=key_id,
        wrapped=made.ciphertext,
        aad=full_aad,
        key_version=made.key_version,
        created_at=when.isoformat().replace("+00:00", "Z"),
    )


def three_seed_passphrase(
    env_seed: str,
    workload_seed: str,
    wrapped: WrappedSeed,
    kms: SeedKms,
    *,
    order: SeedOrder = SeedOrder.ENV_WORKLOAD,
    legacy: bool = False,
) -> str:
    """kyok's three-seed LUKS passphrase: the two contract seeds and the unwrapped third seed.

    Args:
        env_seed: ``env.volumes.<v>.seed``.
        workload_seed: ``workload.volumes.<v>.seed``.
        wrapped: the volume's wrapped third seed (from :func:`new_third_seed`).
        kms: unwraps it.
        order: the two-seed order (default env ‖ workload).
        legacy: accept seeds that follow only the older schema rule.

    Returns:
        64 lowercase hex characters (see the module docstring for the construction).

    Raises:
        SeedError: a seed breaks the schema's rules (checked before the KMS is asked).
        WrappedSeedError: the unwrapped seed is not 32 bytes.
        ThirdSeedUnavailable (from ``kms``): the root key refuses; no passphrase can be derived.
    """
    interim = two_seed_passphrase(env_seed, workload_seed, order=order, legacy=legacy)
    third = kms.unwrap(wrapped.key_id, wrapped.wrapped, aad=wrapped.aad)
    return combine_seeds(interim, bytes(third), volume=wrapped.volume)
