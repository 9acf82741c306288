"""``list_keys(with_total=False)`` (what Key Protect's ``GET /keys`` uses): the same page as
with the total, only no count; and the search scope check, which counts only up to its limit."""

from __future__ import annotations

import pytest

from kyok.kms.errors import SearchTooBroad
from kyok.kms.query import parse_key_query
from kyok.kms.service import KeyService


def _ids(views):
    return [v.id for v in views]


def test_the_page_is_the_same_without_the_total(service, actor, instance, clock):
    made = []
    for n in range(12):
        key = service.create_key(
            actor, instance, f"key-{n:02d}", extractable=n % 3 == 0, aliases=[f"alias-{n}"]
        )
        made.append(key)
        clock.advance(1)
    service.disable(actor, instance, made[4].id)
    service.delete(actor, instance, made[7].id)
    queries = [
        parse_key_query(instance),
        parse_key_query(instance, limit="3", offset="2"),
        parse_key_query(instance, state="1,5", limit="4", offset="8"),
        parse_key_query(instance, state="0,1,2,3,5", sort="-creationDate", limit="5"),
        parse_key_query(instance, extractable="true"),
        parse_key_query(instance, search="key-0"),
        parse_key_query(instance, search="alias-1", offset="1"),
        # a full key id: that key comes first (and is counted) though its name does not match
        parse_key_query(instance, search=made[9].id),
        parse_key_query(instance, search=made[9].id, limit="1"),
        parse_key_query(instance, search=made[9].id, offset="1"),
        parse_key_query(instance, offset="50"),
    ]
    for query in queries:
        views, total = service.list_keys(query)
        bare, none = service.list_keys(query, with_total=False)
        assert none is None
        assert bare == views, query
        assert total == service.count_keys(query)
    by_id, total = service.list_keys(queries[7])
    assert _ids(by_id) == [made[9].id] and total == 1
    assert len(service.list_keys(queries[1], with_total=False)[0]) == 3


def test_the_search_scope_limit_is_exact(store, units, clock, actor):
    service = KeyService(store.uow, units.directory, clock, search_scope_limit=3)
    inst = service.create_instance(actor, "small").id
    for n in range(3):
        service.create_key(actor, inst, f"key-{n}")
    views, total = service.list_keys(parse_key_query(inst, search="key"))
    assert len(views) == 3 and total == 3  # exactly the limit: searched
    assert service.count_keys(parse_key_query(inst, search="key-1")) == 1
    service.create_key(actor, inst, "key-3")
    with pytest.raises(SearchTooBroad):  # one more: refused, counted or not
        service.list_keys(parse_key_query(inst, search="key"), with_total=False)
    with pytest.raises(SearchTooBroad):
        service.count_keys(parse_key_query(inst, search="key"))
