"""Key versions, sealed blobs and aliases."""

from __future__ import annotations

import pytest

from kyok.errors import AlreadyExists

from . import factories as f
from .factories import AnyStore


def test_versions_newest_first_and_paged(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        for n in (1, 3, 2, 4):
            uow.versions.add(f.version(f"v{n}", "k1", n))
        uow.versions.add(f.version("other", "k2", 1))
        uow.commit()
    with any_store.uow() as uow:
        versions = uow.versions
        assert versions.get(f.INSTANCE, "v3") == f.version("v3", "k1", 3)
        assert versions.get("other-instance", "v3") is None
        assert [v.number for v in versions.list_for_key(f.INSTANCE, "k1", 10, 0)] == [4, 3, 2, 1]
        assert [v.id for v in versions.list_for_key(f.INSTANCE, "k1", 2, 1)] == ["v3", "v2"]
        assert versions.count_for_key(f.INSTANCE, "k1") == 4
        assert versions.count_for_key(f.INSTANCE, "k2") == 1
        assert versions.delete_for_key(f.INSTANCE, "k1") == 4
        assert versions.delete_for_key(f.INSTANCE, "k1") == 0
        assert versions.count_for_key(f.INSTANCE, "k1") == 0
        assert versions.count_for_key(f.INSTANCE, "k2") == 1


def test_version_ids_and_numbers_are_unique(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.versions.add(f.version("v1", "k1", 1))
        with pytest.raises(AlreadyExists):
            uow.versions.add(f.version("v1", "k1", 2))  # same id
        with pytest.raises(AlreadyExists):
            uow.versions.add(f.version("v1-bis", "k1", 1))  # same key and number
        uow.versions.add(f.version("v1-k2", "k2", 1))  # the number is per key
        uow.commit()


def test_blobs_crud(any_store: AnyStore) -> None:
    data = bytes(range(256)) * 4
    with any_store.uow() as uow:
        uow.blobs.add(f.blob("v1", "k1", data=data))
        uow.blobs.add(f.blob("v2", "k1", epoch=2))
        uow.blobs.add(f.blob("t1", "token", purpose="import-token"))
        uow.blobs.add(f.blob("v1", "k1", instance_id="other"))
        with pytest.raises(AlreadyExists):
            uow.blobs.add(f.blob("v1", "k9"))
        uow.commit()
    with any_store.uow() as uow:
        got = uow.blobs.get(f.INSTANCE, "v1")
        assert got == f.blob("v1", "k1", data=data)
        assert got is not None and type(got.data) is bytes
        assert uow.blobs.get(f.INSTANCE, "nope") is None
        many = uow.blobs.get_many(f.INSTANCE, ["v1", "v2", "missing", "v1"])
        assert set(many) == {"v1", "v2"} and many["v2"].mk_epoch == 2
        assert uow.blobs.get_many(f.INSTANCE, []) == {}
        assert uow.blobs.delete_for_owner(f.INSTANCE, "k1") == 2
        assert uow.blobs.get(f.INSTANCE, "t1") is not None
        assert uow.blobs.get("other", "v1") is not None
        uow.commit()


def test_blobs_get_many_beyond_one_chunk(any_store: AnyStore) -> None:
    ids = [f"v{i:05d}" for i in range(1200)]
    with any_store.uow() as uow:
        for blob_id in ids:
            uow.blobs.add(f.blob(blob_id, "k1"))
        uow.commit()
    with any_store.uow() as uow:
        assert set(uow.blobs.get_many(f.INSTANCE, [*ids, "absent"])) == set(ids)


def test_aliases_crud(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.aliases.add(f.alias("b-alias", "k1", created_at=f.at(1)))
        uow.aliases.add(f.alias("a-alias", "k1", created_at=f.at(1)))
        uow.aliases.add(f.alias("first", "k1", created_at=f.at(0)))
        uow.aliases.add(f.alias("of-k2", "k2"))
        uow.aliases.add(f.alias("b-alias", "k1", instance_id="other"))
        uow.commit()
    with any_store.uow() as uow:
        aliases = uow.aliases
        assert aliases.get(f.INSTANCE, "b-alias") == f.alias("b-alias", "k1", created_at=f.at(1))
        assert aliases.get(f.INSTANCE, "B-ALIAS") is None
        assert [a.alias for a in aliases.list_for_key(f.INSTANCE, "k1")] == [
            "first",
            "a-alias",
            "b-alias",
        ]
        assert aliases.list_for_keys(f.INSTANCE, ["k1", "k2", "k3"]) == {
            "k1": ["first", "a-alias", "b-alias"],
            "k2": ["of-k2"],
            "k3": [],
        }
        assert aliases.count_for_instance(f.INSTANCE) == 4
        assert aliases.count_for_instance("other") == 1
        assert aliases.delete(f.INSTANCE, "first") is True
        assert aliases.delete(f.INSTANCE, "first") is False
        assert aliases.delete_for_key(f.INSTANCE, "k1") == 2
        assert aliases.count_for_instance(f.INSTANCE) == 1
        uow.commit()


def test_alias_is_unique_within_an_instance(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.aliases.add(f.alias("shared", "k1"))
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.aliases.add(f.alias("shared", "k2"))
        uow.aliases.add(f.alias("shared", "k2", instance_id="other"))
        uow.commit()
