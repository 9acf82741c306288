"""Contract validation against kyok's own JSON Schema (``schemas/contract.schema.json``).

The schema (draft 2020-12) describes a *decoded* contract: ``workload`` and ``env`` are the
parsed YAML of those sections (reference §1). Validation works per section
(:func:`validate_section`) or on a whole decoded document (:func:`validate_document`);
:func:`validate_contract` in :mod:`kyok.contract.contract` goes from contract YAML, decrypting
sections when it has the key.

Rules that differ by platform or image age are switched here by replacing a few ``$defs``:

- ``platform="ccrv"``: no ``compose`` (only ``play`` or ``confidential-containers``);
- ``platform="ccco"``: ``env.host-attestation`` and ``logRouter.tags`` are allowed;
- ``legacy=True``: the rules of images before the 2025/2026 schema — seeds of at least three
  characters (spaces allowed) and the ``logDNA`` logging backend.

Every problem becomes an :class:`Issue` whose ``path`` names the place (``env.logging``,
``workload.compose.archive``, ``workload.auths["us.icr.io"].password``). Messages never contain
the offending value, since seeds, API keys and passwords sit in these sections.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from kyok.contract.token import ContractError

if TYPE_CHECKING:  # jsonschema loads on the first validation, not with every kyok command
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = [
    "PLATFORMS",
    "SECTIONS",
    "ContractInvalid",
    "Issue",
    "format_path",
    "load_schema",
    "validate_document",
    "validate_section",
]

PLATFORMS: tuple[str, ...] = ("hpvs", "ccrt", "ccrv", "ccco")
SECTIONS: tuple[str, ...] = ("workload", "env")

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, order=True)
class Issue:
    """One validation problem: where (a path such as ``env.logging``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        """``{"path": …, "message": …}`` for JSON output."""
        return {"path": self.path, "message": self.message}


class ContractInvalid(ContractError):
    """The contract (or a section) breaks the schema; :attr:`issues` lists every problem."""

    code = "CONTRACT_INVALID_ERR"

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        shown = "; ".join(str(i) for i in self.issues[:10])
        more = f" (and {len(self.issues) - 10} more)" if len(self.issues) > 10 else ""
        super().__init__(f"the contract is not valid: {shown}{more}")


def format_path(parts: Iterable[str | int]) -> str:
    """``["workload", "auths", "us.icr.io"]`` -> ``workload.auths["us.icr.io"]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _base_schema() -> dict[str, Any]:
    text = resources.files("kyok.contract").joinpath("schemas/contract.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ContractError(f"unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}")


@lru_cache(maxsize=16)
def _schema(platform: str, legacy: bool) -> str:
    schema = _base_schema()
    defs = schema["$defs"]
    if platform == "ccrv":
        defs["compose"] = {
            "description": "is not available on CCRV: describe the workload with play",
            "not": {},
        }
        defs["workloadApp"] = {
            "oneOf": [{"required": ["play"]}, {"required": ["confidential-containers"]}]
        }
    if platform == "ccco":
        defs["hostAttestation"] = defs["hostAttestationCcco"]
        defs["logRouterTags"] = {"type": "array", "items": {"type": "string"}}
    if legacy:
        defs["seed"] = {
            "description": "must be at least 3 characters (legacy rule)",
            "type": "string",
            "minLength": 3,
        }
        defs["logDNA"] = defs["logDNALegacy"]
        defs["logging"]["description"] = (
            "where the instance sends its logs: exactly one of logRouter, syslog or logDNA"
        )
    return json.dumps(schema)


def load_schema(platform: str = "hpvs", *, legacy: bool = False) -> dict[str, Any]:
    """The effective JSON Schema for ``platform`` (a fresh copy, safe to change)."""
    _check_platform(platform)
    loaded: dict[str, Any] = json.loads(_schema(platform, legacy))
    return loaded


@lru_cache(maxsize=64)
def _validator(platform: str, legacy: bool, section: str | None) -> Draft202012Validator:
    schema = load_schema(platform, legacy=legacy)
    if section is not None:
        schema = {
            "$schema": schema["$schema"],
            "$defs": schema["$defs"],
            "$ref": f"#/$defs/{section}",
        }
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def _describe(schema: Any) -> str | None:
    if isinstance(schema, Mapping):
        text = schema.get("description")
        if isinstance(text, str):
            return text
    return None


def _kind(value: Any) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "null": "empty",
    }
    if isinstance(value, list):
        return " or ".join(names.get(v, str(v)) for v in value)
    return names.get(str(value), str(value))


def _required_branches(branches: Any) -> list[str] | None:
    """For ``oneOf: [{required: [a]}, {required: [b]}, …]`` the names a, b, …; else None."""
    if not isinstance(branches, list):
        return None
    names: list[str] = []
    for branch in branches:
        if (
            isinstance(branch, Mapping)
            and set(branch) == {"required"}
            and len(branch["required"]) == 1
        ):
            names.append(branch["required"][0])
        else:
            return None
    return names


def _extra_keys(error: ValidationError) -> list[str]:
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    if not isinstance(instance, Mapping):
        return []
    return sorted(
        str(k) for k in instance if k not in known and not any(p.search(str(k)) for p in patterns)
    )


def _issues_for(error: ValidationError, prefix: Sequence[str | int]) -> list[Issue]:
    path = [*prefix, *error.absolute_path]
    where = format_path(path)
    validator = error.validator
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    described = _describe(schema)

    if validator == "required":
        missing = [
            p for p in value if isinstance(error.instance, Mapping) and p not in error.instance
        ]
        return [Issue(format_path([*path, p]), "is required") for p in missing]
    if validator == "additionalProperties":
        extra = _extra_keys(error)
        allowed = sorted(schema.get("properties", {}))
        if schema.get("patternProperties") and not allowed:
            hint = f" ({described})" if described else ""
            return [
                Issue(format_path([*path, k]), f"is not a valid name here{hint}") for k in extra
            ]
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return [Issue(format_path([*path, k]), f"is not allowed{hint}") for k in extra]
    if validator == "oneOf":
        names = _required_branches(value)
        if names is not None and isinstance(error.instance, Mapping):
            present = [n for n in names if n in error.instance]
            if not present:
                return [Issue(where, f"needs exactly one of {', '.join(names)}")]
            return [
                Issue(
                    where,
                    f"{' and '.join(present)} cannot be used together: "
                    f"keep exactly one of {', '.join(names)}",
                )
            ]
    if validator == "not":
        return [Issue(where, described or "is not allowed here")]
    if validator == "type":
        return [Issue(where, f"must be {_kind(value)}")]
    if validator == "const":
        return [Issue(where, f"must be {json.dumps(value)}")]
    if validator == "enum":
        return [Issue(where, f"must be one of {', '.join(json.dumps(v) for v in value)}")]
    if validator == "minLength":
        return [Issue(where, described or f"is too short: at least {value} characters")]
    if validator == "maxLength":
        return [Issue(where, f"is too long: at most {value} characters")]
    if validator == "minimum":
        return [Issue(where, f"must be at least {value}")]
    if validator == "maximum":
        return [Issue(where, f"must be at most {value}")]
    if validator == "minItems":
        return [Issue(where, f"needs at least {value} item(s)")]
    if validator == "maxItems":
        return [Issue(where, f"takes at most {value} item(s)")]
    if validator == "minProperties":
        names = sorted(schema.get("properties", {}))
        need = f"at least one of {', '.join(names)}" if names else f"at least {value} entry"
        return [Issue(where, f"needs {need}")]
    if validator == "dependentRequired":
        return [
            Issue(format_path([*path, need]), f"is required when {key} is given")
            for key, needs in value.items()
            if isinstance(error.instance, Mapping) and key in error.instance
            for need in needs
            if need not in error.instance
        ]
    if validator in ("pattern", "anyOf", "oneOf", "format"):
        return [Issue(where, described or "does not have the expected form")]
    return [Issue(where, described or f"is not valid ({validator})")]


def _collect(
    validator: Draft202012Validator, instance: Any, prefix: Sequence[str | int]
) -> list[Issue]:
    found: set[Issue] = set()
    for error in validator.iter_errors(instance):
        found.update(_issues_for(error, prefix))
    return sorted(found)


def validate_section(
    section: str, value: Any, *, platform: str = "hpvs", legacy: bool = False
) -> tuple[Issue, ...]:
    """Validate one parsed section (``workload`` or ``env``).

    Args:
        section: ``workload`` or ``env``.
        value: the section's parsed YAML (a mapping).
        platform: ``hpvs`` (default), ``ccrt``, ``ccrv`` or ``ccco``.
        legacy: apply the older image rules (short seeds, logDNA).

    Returns:
        The issues, sorted by path; empty when the section is valid.
    """
    _check_platform(platform)
    if section not in SECTIONS:
        raise ContractError(f"unknown section {section!r}: use workload or env")
    return tuple(_collect(_validator(platform, legacy, section), value, [section]))


def validate_document(
    document: Any, *, platform: str = "hpvs", legacy: bool = False
) -> tuple[Issue, ...]:
    """Validate a whole decoded contract ``{workload: {...}, env: {...}, ...}``."""
    _check_platform(platform)
    return tuple(_collect(_validator(platform, legacy, None), document, []))
