"""The key ceremony over HTTP (``/api/v2/kyok/unit``): status, signed commands with sealed
parts, unsealing after a restart, transcript export, re-encryption after a rotation."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import b64, error_of, key_body, make_node
from tests.ceremony_kit import Custodian, make_custodians

from kyok.api.app import create_app
from kyok.api.unit import models
from kyok.auth.principals import SYSTEM
from kyok.bootstrap import Node
from kyok.clock import FakeClock
from kyok.crypto.encoding import b64e
from kyok.crypto.kem import HybridPublicKey
from kyok.unit.commands import Command, SignedCommand
from kyok.unit.transcript import parse_export, verify_export
from kyok.unit.transport import load_part_command

pytestmark = pytest.mark.anyio

UNIT = "/api/v2/kyok/unit"


class Ceremony:
    """Custodians driving one instance's unit over HTTP."""

    def __init__(
        self, client: httpx.AsyncClient, instance: str, custodians: list[Custodian]
    ) -> None:
        self.client = client
        self.instance = instance
        self.custodians = custodians
        self.headers = {"Bluemix-Instance": instance}

    async def status(self) -> dict[str, Any]:
        r = await self.client.get(UNIT, headers=self.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def submit(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            UNIT + "/commands", content=json.dumps(body), headers=self.headers
        )

    async def run(
        self, name: str, args: dict[str, Any], signers: list[Custodian]
    ) -> dict[str, Any]:
        st = await self.status()
        cmd = SignedCommand(st["unitId"], st["seq"], name, args)
        for s in signers:
            cmd = cmd.signed_by(s.key)
        r = await self.submit(cmd.to_json())
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def load(
        self, custodian: Custodian, register: str, parts: int | None = None
    ) -> dict[str, Any]:
        st = await self.status()
        transport = HybridPublicKey.from_bytes(base64.b64decode(st["transportKey"]))
        assert transport.fingerprint == st["transportKeyFingerprint"]
        cmd, sealed = load_part_command(
            unit_id=st["unitId"], seq=st["seq"], register=register, part=custodian.part,
            transport=transport, parts=parts,
        )  # fmt: skip
        r = await self.submit({**cmd.signed_by(custodian.key).to_json(), "sealedPart": b64(sealed)})
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def imprint(self) -> None:
        first, *rest = self.custodians
        await self.run(
            Command.ADD_ADMIN,
            {"name": first.name, "public_key": b64e(first.key.verifying_key().der)},
            [],
        )
        for c in rest:
            await self.run(
                Command.ADD_ADMIN,
                {"name": c.name, "public_key": b64e(c.key.verifying_key().der)},
                [first],
            )
        await self.run(Command.SET_THRESHOLDS, {"signature": 2, "revocation": 2}, [first])

    async def master_key(self, threshold: int) -> str:
        result: dict[str, Any] = {}
        for c in self.custodians:
            result = await self.load(c, "new", parts=len(self.custodians))
        mkvp = str(result["mkvp"])
        signers = self.custodians[:2]
        await self.run(
            Command.COMMIT, {"mkvp": mkvp, "scheme": "shamir", "threshold": threshold}, signers
        )
        await self.run(Command.ACTIVATE, {"mkvp": mkvp}, signers)
        return mkvp


async def _client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(node)), base_url="http://kyok.test"
    )


async def test_ceremony_unseal_after_restart_transcript_and_reencrypt(tmp_path: Path) -> None:
    clock = FakeClock()
    custodians = make_custodians(3)
    node = make_node(tmp_path, clock)
    instance = node.service.create_instance(SYSTEM, "shares", seal="shares").id
    async with await _client(node) as client:
        c = Ceremony(client, instance, custodians)
        st = await c.status()
        models.UnitStatus.model_validate(st)
        assert (
            st["imprint"] is True
            and st["sealed"] is True
            and st["seq"] == 0
            and st["seal"] == "shares"
        )
        health = (await client.get("/health")).json()
        assert health["status"] == "sealed"
        await c.imprint()
        mkvp = await c.master_key(threshold=2)
        st = await c.status()
        assert st["sealed"] is False and [a["name"] for a in st["admins"]] == [
            "alice",
            "bob",
            "carol",
        ]
        assert any(r["register"] == "current" and r["mkvp"] == mkvp for r in st["registers"])
        admin = {
            "Authorization": f"Bearer {node.auth.bootstrap_admin(instance)}",
            "Bluemix-Instance": instance,
        }
        key = (
            await client.post("/api/v2/keys", json=key_body("after-ceremony"), headers=admin)
        ).json()["resources"][0]
        ct = (
            await client.post(
                f"/api/v2/keys/{key['id']}/actions/wrap",
                json={"plaintext": b64(b"d" * 32)},
                headers=admin,
            )
        ).json()["ciphertext"]
    node.close()

    # a restart: the shares seal keeps no master key, so the unit is sealed until custodians return
    node = make_node(tmp_path, clock)
    async with await _client(node) as client:
        c = Ceremony(client, instance, custodians)
        assert (await c.status())["sealed"] is True
        assert (await client.get("/health")).json()["status"] == "sealed"
        admin = {
            "Authorization": f"Bearer {node.auth.bootstrap_admin(instance)}",
            "Bluemix-Instance": instance,
        }
        r = await client.post(
            f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": ct}, headers=admin
        )
        assert r.status_code == 503 and error_of(r)["code"] == "UNIT_SEALED_ERR"
        first = await c.load(custodians[0], "current")
        assert first["loaded"] == 1 and first["needed"] == 2 and "unsealed" not in first
        second = await c.load(custodians[2], "current")
        assert second["unsealed"] is True and second["mkvp"] == mkvp
        r = await client.post(
            f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": ct}, headers=admin
        )
        assert r.status_code == 200 and r.json()["plaintext"] == b64(b"d" * 32)

        # the transcript verifies offline
        r = await client.get(UNIT + "/transcript", headers=c.headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        report = verify_export(
            parse_export(r.text.splitlines()), unit_id=(await c.status())["unitId"]
        )
        assert report.ok, report.error

        # a master-key rotation, then re-encryption in the background
        new_parts = make_custodians(3)
        for old, new in zip(custodians, new_parts, strict=True):
            old.part = new.part
        new_mkvp = await c.master_key(threshold=2)
        assert new_mkvp != mkvp
        st = await c.status()
        assert st["rotationRemaining"] is not None and st["rotationRemaining"] > 0
        r = await client.post(UNIT + "/reencrypt", headers=c.headers)
        assert r.status_code == 202
        models.ReencryptState.model_validate(r.json())
        assert node.unit_console.wait(instance, timeout=30)
        st = await c.status()
        assert st["rotationRemaining"] is None and st["reencrypting"] is False
        r = await client.post(
            f"/api/v2/keys/{key['id']}/actions/unwrap", json={"ciphertext": ct}, headers=admin
        )
        assert r.status_code == 200
    node.close()


async def test_bad_commands_are_refused_without_change(tmp_path: Path) -> None:
    node = make_node(tmp_path, FakeClock())
    instance = node.service.create_instance(SYSTEM, "shares", seal="shares").id
    custodians = make_custodians(2)
    try:
        async with await _client(node) as client:
            c = Ceremony(client, instance, custodians)
            for content in (b"", b"[]", b"{bad", json.dumps({"format": "nope"}).encode()):
                r = await client.post(UNIT + "/commands", content=content, headers=c.headers)
                assert r.status_code == 400, content
                assert error_of(r)["code"] == "BAD_BODY_ERR"
            st = await c.status()
            stale = SignedCommand(
                st["unitId"], st["seq"] + 5, Command.ADD_ADMIN, {"name": "x", "public_key": "AA=="}
            )
            r = await c.submit(stale.to_json())
            assert r.status_code == 409 and error_of(r)["code"] == "CEREMONY_REJECTED_ERR"
            r = await c.submit({**stale.to_json(), "sealedPart": "!!"})
            assert r.status_code == 400 and error_of(r)["target"] == {
                "type": "field",
                "name": "sealedPart",
            }
            assert (await c.status())["seq"] == st["seq"]
            r = await client.get(UNIT)
            assert r.status_code == 400
            r = await client.get(UNIT, headers={"Bluemix-Instance": "no-such-instance"})
            assert r.status_code == 404
            r = await client.get(
                UNIT + "/transcript", headers={"Bluemix-Instance": "no-such-instance"}
            )
            assert r.status_code == 404
            r = await client.post(UNIT + "/reencrypt", headers=c.headers)
            assert r.status_code == 503  # sealed: nothing to re-encrypt with
    finally:
        node.close()
