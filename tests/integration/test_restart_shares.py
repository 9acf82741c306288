"""After a restart with the shares seal the unit is sealed; custodians' parts unseal it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ceremony_kit import ceremony, imprint, load, make_custodians
from kyok.auth.principals import Principal
from kyok.unit.errors import UnitSealed

from .conftest import OpenNode

ALICE = Principal("alice@example.com")


def test_dek_wrapped_before_a_restart_unwraps_after_unsealing(node_factory: OpenNode) -> None:
    node = node_factory()
    instance = node.service.create_instance(ALICE, "prod", seal="shares")
    unit = node.units.for_instance(instance.id)
    custodians = make_custodians(3)
    imprint(unit, custodians, 2, 2)
    mkvp = ceremony(unit, custodians, "shamir", 2, custodians[:2])

    keys = [node.service.create_key(ALICE, instance.id, f"root-{i}") for i in range(3)]
    imported = node.service.create_key(ALICE, instance.id, "imported", material=os.urandom(16))
    standard = node.service.create_key(
        ALICE, instance.id, "standard", extractable=True, material=b"s3cret payload"
    )
    wrapped = [
        (k.record.id, node.service.wrap(instance.id, k.record.id, None, ["ctx"]))
        for k in [*keys, imported]
    ]
    node.close()

    restarted = node_factory()
    unit2 = restarted.units.for_instance(instance.id)
    assert unit2.sealed and unit2.state.current is not None and unit2.state.current.mkvp == mkvp
    with pytest.raises(UnitSealed):
        restarted.service.wrap(instance.id, keys[0].record.id)
    with pytest.raises(UnitSealed):
        restarted.service.unwrap(instance.id, keys[0].record.id, wrapped[0][1].ciphertext, ["ctx"])
    with pytest.raises(UnitSealed):
        restarted.service.create_key(ALICE, instance.id, "while-sealed")
    with pytest.raises(UnitSealed):
        restarted.service.get_key_material(instance.id, standard.record.id)
    # metadata stays readable while sealed
    assert restarted.service.get_key(instance.id, keys[0].record.id).record.name == "root-0"

    load(unit2, custodians[2], "current")
    assert unit2.sealed
    load(unit2, custodians[0], "current")
    assert not unit2.sealed
    for key_id, result in wrapped:
        assert result.dek is not None
        assert (
            restarted.service.unwrap(instance.id, key_id, result.ciphertext, ["ctx"]).plaintext
            == result.dek
        )
    assert restarted.service.get_key_material(instance.id, standard.record.id) == b"s3cret payload"


def test_dev_node_restarts_unsealed(node_factory: OpenNode) -> None:
    node = node_factory()
    instance = node.service.create_instance(ALICE, "dev", seal="dev")
    key = node.service.create_key(ALICE, instance.id, "dev-key")
    result = node.service.wrap(instance.id, key.record.id)
    node.close()
    again = node_factory()
    assert (
        again.service.unwrap(instance.id, key.record.id, result.ciphertext).plaintext == result.dek
    )


def test_the_default_database_is_owner_only(tmp_path: Path) -> None:
    import stat

    from kyok.bootstrap import open_node
    from kyok.settings import Settings

    data = tmp_path / "data"
    with open_node(Settings(data_dir=data)) as node:
        node.service.create_instance(ALICE, "perms", seal="dev")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.glob("kyok.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
