"""kyok's contract schema: seed 004's example sections, the rules, paths in errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from tests.contract.contract_kit import FIXTURES, encryption_key, public_pem, signing_key

from kyok.contract.contract import Contract, parse_contract, validate_contract
from kyok.contract.schema import (
    ContractInvalid,
    Issue,
    format_path,
    load_schema,
    validate_document,
    validate_section,
)
from kyok.contract.sections import encode_tgz
from kyok.contract.token import ContractError

CURRENT_VALID = ["seed004_workload_play_resources.yaml", "seed004_env_syslog_kms.yaml"]
LEGACY_ONLY = {
    "seed004_workload_compose.yaml": {"workload.volumes.test.seed"},
    "seed004_env_logdna.yaml": {"env.logging.logDNA", "env.volumes.test.seed"},
    "seed004_env_kms.yaml": {"env.logging.logDNA", "env.volumes.test.seed"},
}


def _section(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(doc, dict)
    return doc


def _paths(issues: tuple[Issue, ...]) -> set[str]:
    return {i.path for i in issues}


def test_schema_is_valid_draft_2020_12() -> None:
    for platform in ("hpvs", "ccrt", "ccrv", "ccco"):
        for legacy in (False, True):
            schema = load_schema(platform, legacy=legacy)
            Draft202012Validator.check_schema(schema)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", CURRENT_VALID)
def test_seed_examples_accepted(name: str) -> None:
    doc = _section(name)
    assert validate_section(doc["type"], doc) == ()
    assert validate_section(doc["type"], doc, legacy=True) == ()


@pytest.mark.parametrize("name", sorted(LEGACY_ONLY))
def test_seed_examples_with_old_rules(name: str) -> None:
    """Examples with short or spaced seeds and logDNA: valid for older images (--legacy),
    and under today's rules rejected exactly at those places."""
    doc = _section(name)
    assert validate_section(doc["type"], doc, legacy=True) == ()
    assert _paths(validate_section(doc["type"], doc)) == LEGACY_ONLY[name]


def test_seed_contract_example_accepted() -> None:
    contract = parse_contract((FIXTURES / "seed004_contract_templates_syslog.yaml").read_text())
    report = validate_contract(contract)
    assert report.valid and report.skipped == ()


def test_printed_compose_archive_is_caught_as_damaged() -> None:
    """Example 3-6's archive passes the schema's pattern, but the printed text lost characters:
    the deep check says so at its path."""
    contract = Contract(
        workload=(FIXTURES / "seed004_workload_compose.yaml").read_text(),
        env=(FIXTURES / "seed004_env_logdna.yaml").read_text().replace("test:", "test:", 1),
    )
    report = validate_contract(contract, legacy=True)
    assert (
        Issue("workload.compose.archive", "does not decode as base64 of a gzipped tar archive")
        in report.issues
    )
    assert validate_contract(contract, legacy=True, check_archives=False).valid


def test_short_seed_rejected_with_path() -> None:
    doc = _section("seed004_workload_play_resources.yaml")
    doc["volumes"] = {"data": {"seed": "tooShort123"}}
    issues = validate_section("workload", doc)
    assert [i.path for i in issues] == ["workload.volumes.data.seed"]
    assert "at least 15 characters" in issues[0].message
    assert "tooShort123" not in issues[0].message  # seeds are secrets: never echoed
    doc["volumes"]["data"]["seed"] = "long enough but spaced"
    assert _paths(validate_section("workload", doc)) == {"workload.volumes.data.seed"}
    doc["volumes"]["data"]["seed"] = "Long-Enough-Seed-0123"
    assert validate_section("workload", doc) == ()


def test_missing_logging_rejected_with_path() -> None:
    doc = _section("seed004_env_syslog_kms.yaml")
    del doc["logging"]
    assert validate_section("env", doc) == (Issue("env.logging", "is required"),)


def test_compose_together_with_play_rejected_with_path() -> None:
    doc = _section("seed004_workload_play_resources.yaml")
    doc["compose"] = {"archive": "H4sIAAAAAAAA"}
    issues = validate_section("workload", doc)
    assert len(issues) == 1
    assert issues[0].path == "workload"
    assert "compose and play cannot be used together" in issues[0].message
    del doc["compose"], doc["play"]
    assert validate_section("workload", doc)[0].message.startswith(
        "needs exactly one of compose, play"
    )


def test_two_logging_backends_rejected() -> None:
    doc = _section("seed004_env_syslog_kms.yaml")
    doc["logging"]["logRouter"] = {"hostname": "logs.example.com", "iamApiKey": "k"}
    issues = validate_section("env", doc)
    assert [i.path for i in issues] == ["env.logging"]
    assert "logRouter and syslog cannot be used together" in issues[0].message


@pytest.mark.parametrize(
    "change, path, words",
    [
        (lambda d: d.update(type="env"), "workload.type", 'must be "workload"'),
        (lambda d: d.update(extra=1), "workload.extra", "is not allowed"),
        (lambda d: d.update(env={"1BAD": "x"}), 'workload.env["1BAD"]', "not a valid name"),
        (lambda d: d.update(env={"PORT": 8080}), "workload.env.PORT", "must be a string"),
        (
            lambda d: d.update(volumes={"Bad Name": {"seed": "a" * 20}}),
            'workload.volumes["Bad Name"]',
            "not a valid name",
        ),
        (
            lambda d: d.update(volumes={"v": {"seed": "a" * 20, "mount": "relative/path"}}),
            "workload.volumes.v.mount",
            "absolute path",
        ),
        (
            lambda d: d.update(volumes={"v": {"seed": "a" * 20, "filesystem": "ntfs"}}),
            "workload.volumes.v.filesystem",
            "must be one of",
        ),
        (lambda d: d.update(volumes={"v": {}}), "workload.volumes.v.seed", "is required"),
        (
            lambda d: d.update(auths={"us.icr.io": {"username": "iamapikey"}}),
            'workload.auths["us.icr.io"].password',
            "is required",
        ),
        (
            lambda d: d.update(auths={"not a host!": {"username": "abc", "password": "abc"}}),
            'workload.auths["not a host!"]',
            "not a valid name",
        ),
        (
            lambda d: d.update(
                images={
                    "dct": {"us.icr.io/ns/name:tag": {"notary": "https://n", "publicKey": "QUFB"}}
                }
            ),
            'workload.images.dct["us.icr.io/ns/name:tag"]',
            "not a valid name",
        ),
        (
            lambda d: d["play"]["resources"][0].update(kind="Deployment"),
            "workload.play.resources[0].kind",
            "must be one of",
        ),
        (lambda d: d.update(play={}), "workload.play", "at least one of"),
    ],
)
def test_workload_rules(change: Any, path: str, words: str) -> None:
    doc = copy.deepcopy(_section("seed004_workload_play_resources.yaml"))
    change(doc)
    issues = validate_section("workload", doc)
    assert path in _paths(issues), issues
    assert any(words in i.message for i in issues if i.path == path), issues


@pytest.mark.parametrize(
    "change, path, words",
    [
        (
            lambda d: d["logging"]["syslog"].pop("server"),
            "env.logging.syslog.server",
            "is required",
        ),
        (
            lambda d: d["logging"]["syslog"].update(server="not a cert"),
            "env.logging.syslog.server",
            "CA certificate",
        ),
        (
            lambda d: d["logging"]["syslog"].update(port=70000),
            "env.logging.syslog.port",
            "at most 65535",
        ),
        (
            lambda d: d["volumes"]["payment-data-volume"].update(kmsTimeout=21),
            "env.volumes.payment-data-volume.kmsTimeout",
            "at most 20",
        ),
        (
            lambda d: d["volumes"]["payment-data-volume"]["kms"][0].update(crn="crn:v1:bad"),
            "env.volumes.payment-data-volume.kms[0].crn",
            "CRN",
        ),
        (
            lambda d: d["volumes"]["payment-data-volume"]["kms"][0].update(apiKey="short"),
            "env.volumes.payment-data-volume.kms[0].apiKey",
            "at least 10",
        ),
        (
            lambda d: d["volumes"]["payment-data-volume"].update({"uv-secret-id": "index-1"}),
            "env.volumes.payment-data-volume",
            "seed and uv-secret-id cannot be used together",
        ),
        (
            lambda d: d["volumes"]["payment-data-volume"].update({"uv-secret-id": "index-9"}),
            "env.volumes.payment-data-volume.uv-secret-id",
            "index-1 to index-8",
        ),
        (lambda d: d.update(signingKey="xxxxxxxxx"), "env.signingKey", "PEM public key"),
        (
            lambda d: d.update(cacerts=[{"a": "QUFBQQ=="}, {"b": "QUFBQQ=="}]),
            "env.cacerts",
            "at most 1",
        ),
        (lambda d: d.update({"host-attestation": {}}), "env.host-attestation", "CCCO only"),
        (
            lambda d: d.update(crn="crn:v1:bluemix:public:x:y:a/b:c:key:d"),
            "env.crn",
            "is not allowed",
        ),
    ],
)
def test_env_rules(change: Any, path: str, words: str) -> None:
    doc = copy.deepcopy(_section("seed004_env_syslog_kms.yaml"))
    change(doc)
    issues = validate_section("env", doc)
    assert path in _paths(issues), issues
    assert any(words in i.message for i in issues if i.path == path), issues


def test_env_signing_key_forms_pass() -> None:
    doc = _section("seed004_env_syslog_kms.yaml")
    pem = public_pem(signing_key()).decode()
    for value in (pem, pem.replace("\n", "\r\n  "), json.dumps(pem)[1:-1].replace("\\n", "\n")):
        doc["signingKey"] = value
        assert validate_section("env", doc) == (), value


def test_platform_rules() -> None:
    compose = {"type": "workload", "compose": {"archive": "H4sIAAAA"}}
    assert validate_section("workload", compose, platform="ccrt") == ()
    ccrv = validate_section("workload", compose, platform="ccrv")
    assert (
        Issue("workload.compose", "is not available on CCRV: describe the workload with play")
        in ccrv
    )
    env = _section("seed004_env_syslog_kms.yaml")
    env["host-attestation"] = {"host1": {"description": "h", "host-key-doc": "QUFBQQ=="}}
    assert validate_section("env", env, platform="ccco") == ()
    router = {
        "type": "env",
        "logging": {"logRouter": {"hostname": "h.example.com", "iamApiKey": "k", "tags": ["a"]}},
    }
    assert _paths(validate_section("env", router)) == {"env.logging.logRouter.tags"}
    assert validate_section("env", router, platform="ccco") == ()
    with pytest.raises(ContractError, match="unknown platform"):
        validate_section("env", router, platform="zos")


def test_whole_document_paths() -> None:
    issues = validate_document({"workload": _section("seed004_workload_play_resources.yaml")})
    assert issues == (Issue("env", "is required"),)
    issues = validate_document(
        {
            "workload": _section("seed004_workload_play_resources.yaml"),
            "env": {"type": "env"},
            "other": 1,
        }
    )
    assert _paths(issues) == {"env.logging", "other"}


def test_contract_invalid_lists_issues_without_values() -> None:
    doc = _section("seed004_workload_play_resources.yaml")
    doc["volumes"] = {"data": {"seed": "TopSecretSeed"}}
    error = ContractInvalid(validate_section("workload", doc))
    assert "workload.volumes.data.seed" in str(error)
    assert "TopSecretSeed" not in str(error)


def test_format_path() -> None:
    assert format_path(["workload", "compose", "archive"]) == "workload.compose.archive"
    assert format_path(["workload", "auths", "https://index.docker.io/v1/", "password"]) == (
        'workload.auths["https://index.docker.io/v1/"].password'
    )
    assert (
        format_path(["workload", "play", "resources", 0, "kind"])
        == "workload.play.resources[0].kind"
    )


# --- validate_contract: beyond the schema ----------------------------------------------------------


def _compose_contract(
    tmp_path: Path, *, workload_volume: str = "data", env_volume: str = "data"
) -> Contract:
    (tmp_path / "docker-compose.yaml").write_text("services:\n  app:\n    image: busybox\n")
    archive = encode_tgz(tmp_path)
    workload = (
        f"type: workload\ncompose:\n  archive: {archive}\n"
        f"volumes:\n  {workload_volume}:\n    seed: workload-seed-0123456789\n"
    )
    env = (
        "type: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: k\n"
        f"volumes:\n  {env_volume}:\n    seed: env-seed-0123456789\n"
    )
    return Contract(workload=workload, env=env)


def test_validate_contract_cross_checks(tmp_path: Path) -> None:
    assert validate_contract(_compose_contract(tmp_path)).valid
    report = validate_contract(_compose_contract(tmp_path, env_volume="other"))
    assert _paths(report.issues) == {"workload.volumes.data", "env.volumes.other"}


def test_compose_archive_without_compose_file(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pod.yaml").write_text("kind: Pod\n")
    workload = f"type: workload\ncompose:\n  archive: {encode_tgz(tmp_path / 'app')}\n"
    env = "type: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: k\n"
    report = validate_contract(Contract(workload=workload, env=env))
    assert report.issues == (
        Issue(
            "workload.compose.archive",
            "has no docker-compose.yaml or docker-compose.yml at its top level",
        ),
    )


def test_encrypted_sections_skipped_or_decrypted(tmp_path: Path) -> None:
    from kyok.contract.contract import encrypt_contract

    contract = encrypt_contract(_compose_contract(tmp_path), encryption_key().public_key())
    report = validate_contract(contract)
    assert report.valid and report.skipped == ("workload", "env")
    full = validate_contract(contract, private_key=encryption_key())
    assert full.valid and full.skipped == ()


def test_missing_sections_and_bad_yaml() -> None:
    assert validate_contract(
        Contract(workload="type: workload\nplay:\n  archive: QUFBQQ==\n")
    ).issues[0] == Issue("env", "is required")
    report = validate_contract(Contract(workload="type: [unclosed", env="type: env\n"))
    assert any(i.path == "workload" and "not valid YAML" in i.message for i in report.issues)
    broken = validate_contract(Contract(workload="hyper-protect-basic.abc", env="type: env\n"))
    assert any(i.path == "workload" and "broken" in i.message for i in broken.issues)


def test_bad_top_level_values() -> None:
    contract = Contract(
        workload=(FIXTURES / "seed004_workload_play_resources.yaml").read_text(),
        env="type: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: k\n",
        attestation_public_key="not a key",
        env_workload_signature="***",
    )
    assert _paths(validate_contract(contract).issues) == {
        "attestationPublicKey",
        "envWorkloadSignature",
    }


@settings(max_examples=40, deadline=None)
@given(
    name=st.from_regex(r"[a-z_][a-z0-9_-]{0,20}", fullmatch=True),
    seed=st.from_regex(r'[a-zA-Z0-9!@#$%^&*(),.?":{}|<>_-]{15,40}', fullmatch=True),
)
def test_valid_volume_names_and_seeds_accepted(name: str, seed: str) -> None:
    doc = {"type": "workload", "play": {"archive": "QUFBQQ=="}, "volumes": {name: {"seed": seed}}}
    assert validate_section("workload", doc) == ()


@settings(max_examples=40, deadline=None)
@given(seed=st.text(max_size=40))
def test_seed_rule_matches_the_reference(seed: str) -> None:
    allowed = set(
        'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*(),.?":{}|<>_-'
    )
    doc = {"type": "workload", "play": {"archive": "QUFBQQ=="}, "volumes": {"v": {"seed": seed}}}
    expected_ok = len(seed) >= 15 and set(seed) <= allowed
    assert (validate_section("workload", doc) == ()) is expected_ok
