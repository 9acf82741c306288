"""Whole contracts: YAML in and out, signingKey injection, encrypt, decrypt, inspect."""

from __future__ import annotations

import base64
import hashlib

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.contract.contract_kit import (
    FIXTURES,
    encryption_key,
    new_rsa,
    public_pem,
    signing_key,
)

from kyok.contract.contract import (
    Contract,
    decrypt_contract,
    dump_contract,
    encrypt_contract,
    inspect_contract,
    parse_contract,
    parse_section,
    prefix_for,
    sign_contract,
    verify_contract,
    with_signing_key,
)
from kyok.contract.schema import ContractInvalid
from kyok.contract.token import ContractError, TokenError, decrypt_token, encrypt_token

WORKLOAD = (FIXTURES / "seed004_workload_play_resources.yaml").read_text()
ENV = "# deployer's note\ntype: env\nlogging:\n  logRouter:\n    hostname: logs.example.com\n    iamApiKey: secret-iam-key\n"


def test_parse_and_dump_round_trip() -> None:
    text = (FIXTURES / "seed004_contract_templates_syslog.yaml").read_text()
    contract = parse_contract(text)
    assert contract.workload is not None and contract.workload.startswith("type: workload\n")
    again = dump_contract(contract)
    assert parse_contract(again) == contract
    assert again.index("env:") < again.index("workload:")  # sorted keys, like contract-go


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "workload": st.text(),
            "env": st.text(),
            "attestation_public_key": st.text(),
            "env_workload_signature": st.text(),
        },
    )
)
def test_dump_parse_property(values: dict[str, str]) -> None:
    contract = Contract(**values)
    try:
        text = dump_contract(contract)
    except yaml.YAMLError:
        pytest.skip("text YAML cannot represent (lone surrogates)")
    assert parse_contract(text) == contract


def test_tokens_are_written_on_one_line() -> None:
    contract = encrypt_contract(Contract(workload=WORKLOAD, env=ENV), encryption_key().public_key())
    lines = dump_contract(contract).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("env: hyper-protect-basic.") and lines[1].startswith(
        "workload: hyper-protect-basic."
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("workload: x\nextra: y\n", "unknown top-level key"),
        ("workload:\n  type: workload\n", "must be a string"),
        ("env: a\nenv: b\n", "a key appears twice"),
        ("workload: [unclosed\n", "not valid YAML at line 2"),
        ("type: env\nlogging: {}\n", "raw env section"),
    ],
)
def test_parse_refusals(text: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_contract(text)


def test_duplicate_keys_inside_sections_are_refused() -> None:
    with pytest.raises(ContractError, match="appears twice"):
        parse_section("type: env\ntype: workload\n", "env")


def test_repr_never_shows_section_text() -> None:
    contract = Contract(workload=WORKLOAD, env=ENV)
    assert "secret-iam-key" not in repr(contract)
    assert repr(contract) == "Contract(workload=<plaintext>, env=<plaintext>)"
    inspection = inspect_contract(contract)
    assert "secret-iam-key" not in repr(inspection)


def test_with_signing_key_appends_and_keeps_comments() -> None:
    out = with_signing_key(ENV, "QUJD")
    assert out == ENV + "signingKey: QUJD\n"
    assert with_signing_key(out, "QUJD") == out  # same value: unchanged
    replaced = with_signing_key(out, "REVG")
    assert replaced == ENV + "signingKey: REVG\n"
    no_newline = with_signing_key(ENV.rstrip("\n"), "QUJD")
    assert parse_section(no_newline, "env")["signingKey"] == "QUJD"


def test_with_signing_key_flow_style_and_block_value_are_rewritten() -> None:
    flow = "{type: env, logging: {logRouter: {hostname: h.example.com, iamApiKey: k}}}"
    out = with_signing_key(flow, "QUJD")
    assert parse_section(out, "env") == {**parse_section(flow, "env"), "signingKey": "QUJD"}
    block = "type: env\nsigningKey: |\n  -----BEGIN PUBLIC KEY-----\n  AAAA\n  -----END PUBLIC KEY-----\nlogging: {}\n"
    out = with_signing_key(block, "QUJD")
    assert parse_section(out, "env") == {"type": "env", "signingKey": "QUJD", "logging": {}}
    with pytest.raises(ContractError, match="must be a YAML mapping"):
        with_signing_key("- a\n", "QUJD")


@pytest.mark.parametrize(
    "platform, prefix",
    [
        ("hpvs", "hyper-protect-basic"),
        ("ccco", "hyper-protect-basic"),
        ("ccrt", "contract-basic"),
        ("ccrv", "contract-basic"),
    ],
)
def test_platform_prefixes(platform: str, prefix: str) -> None:
    assert prefix_for(platform) == prefix
    contract = encrypt_contract(
        Contract(workload=WORKLOAD, env=ENV, attestation_public_key=public_pem(new_rsa()).decode()),
        encryption_key().public_key(),
        platform=platform,
    )
    for key in ("workload", "env", "attestationPublicKey"):
        assert (contract.get(key) or "").startswith(prefix + ".")
    assert contract.env_workload_signature is None


def test_encrypt_keeps_sections_byte_exact_and_a_pre_encrypted_workload() -> None:
    provider_token = encrypt_token(WORKLOAD.encode(), encryption_key().public_key())
    env = ENV + "\n\n"  # trailing blank lines are kept, not trimmed as contract-go does
    result = encrypt_contract(
        Contract(workload=provider_token, env=env),
        encryption_key().public_key(),
        signing_key=signing_key(),
    )
    assert result.workload == provider_token
    plain = decrypt_contract(result, encryption_key())
    assert plain.workload == WORKLOAD
    assert plain.env is not None and plain.env.startswith(env)
    assert plain.env.endswith(
        f"signingKey: {base64.b64encode(public_pem(signing_key())).decode()}\n"
    )


def test_encrypt_refuses_invalid_and_encrypted_env() -> None:
    with pytest.raises(ContractInvalid) as info:
        encrypt_contract(
            Contract(workload=WORKLOAD, env="type: env\n"), encryption_key().public_key()
        )
    assert [i.path for i in info.value.issues] == ["env.logging"]
    # --no-validate
    encrypt_contract(
        Contract(workload=WORKLOAD, env="type: env\n"),
        encryption_key().public_key(),
        validate=False,
    )
    env_token = encrypt_token(ENV.encode(), encryption_key().public_key())
    with pytest.raises(ContractError, match="env is already encrypted"):
        encrypt_contract(
            Contract(workload=WORKLOAD, env=env_token),
            encryption_key().public_key(),
            signing_key=signing_key(),
        )
    with pytest.raises(ContractError, match="no env"):
        encrypt_contract(Contract(workload=WORKLOAD), encryption_key().public_key())
    with pytest.raises(ContractError, match="RSA public key"):
        encrypt_contract(
            Contract(workload=WORKLOAD, env=ENV, attestation_public_key="not a key"),
            encryption_key().public_key(),
        )


def test_decrypt_names_the_failing_section() -> None:
    contract = encrypt_contract(Contract(workload=WORKLOAD, env=ENV), encryption_key().public_key())
    with pytest.raises(TokenError, match=r"^workload: "):
        decrypt_contract(contract, new_rsa())  # another size: fails every time


def test_sign_only_keeps_everything_else() -> None:
    contract = Contract(
        workload=WORKLOAD, env=with_signing_key(ENV, "QUJD"), attestation_public_key="x"
    )
    signed = sign_contract(contract, signing_key())
    assert (signed.workload, signed.env, signed.attestation_public_key) == (
        contract.workload,
        contract.env,
        "x",
    )
    assert (
        verify_contract(signed, signing_key=signing_key().public_key()).valid is False
    )  # env key is "QUJD"


def test_plaintext_signed_contract_verifies_from_env() -> None:
    contract = encrypt_contract(
        Contract(workload=WORKLOAD, env=ENV),
        encryption_key().public_key(),
        signing_key=signing_key(),
    )
    plain = decrypt_contract(contract, encryption_key())
    resigned = sign_contract(plain.with_section("envWorkloadSignature", None), signing_key())
    report = verify_contract(resigned)
    assert report.valid and report.key_source == "env.signingKey"
    with pytest.raises(ContractError, match="not signed"):
        verify_contract(plain.with_section("envWorkloadSignature", None))


def test_inspect_reports_hashes_prefixes_and_signature() -> None:
    contract = encrypt_contract(
        Contract(workload=WORKLOAD, env=ENV),
        encryption_key().public_key(),
        signing_key=signing_key(),
        platform="ccrt",
    )
    blind = inspect_contract(contract)
    assert [s.name for s in blind.sections] == ["workload", "env", "envWorkloadSignature"]
    workload = blind.sections[0]
    assert workload.encrypted and workload.prefix == "contract-basic" and workload.plaintext is None
    assert workload.sha256 == hashlib.sha256((contract.workload or "").encode()).hexdigest()
    assert blind.signature is None and "env is encrypted" in (blind.signature_error or "")
    seen = inspect_contract(contract, private_key=encryption_key())
    assert seen.sections[0].plaintext == WORKLOAD
    assert seen.signature is not None and seen.signature.valid
    wrong = inspect_contract(
        contract, private_key=new_rsa(), signing_key=signing_key().public_key()
    )
    assert wrong.sections[0].error is not None
    assert wrong.signature is None and wrong.signature_error is not None


def test_decrypted_token_matches_encrypt_token_api() -> None:
    token = encrypt_token(b"hello", encryption_key().public_key(), prefix=prefix_for("ccrv"))
    assert decrypt_token(token, encryption_key()) == b"hello"
    with pytest.raises(ContractError, match="unknown platform"):
        prefix_for("zos")
