"""Registrations on every backend: CRUD, queries, and ``crn_pattern`` against a reference."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyok.errors import AlreadyExists, VersionConflict
from kyok.store.records import RegistrationQuery, RegistrationRecord

from . import factories as f
from .factories import AnyStore
from .test_concurrency import TIMEOUT, _race

OTHER = "inst-2"
CRN = "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst::"


def reg(
    key_id: str = "key-1",
    crn: str = f"{CRN}bucket:b1",
    *,
    instance_id: str = f.INSTANCE,
    **overrides: Any,
) -> RegistrationRecord:
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "key_id": key_id,
        "resource_crn": crn,
        "created_at": f.T0,
        "created_by": "service",
        "updated_at": f.T0,
        "updated_by": "service",
        "key_version_id": f"{key_id}-v1",
    }
    values.update(overrides)
    return RegistrationRecord(**values)


def query(**overrides: Any) -> RegistrationQuery:
    values: dict[str, Any] = {"instance_id": f.INSTANCE}
    values.update(overrides)
    return RegistrationQuery(**values)


def crns(store: AnyStore, q: RegistrationQuery) -> list[str]:
    with store.uow(read_only=True) as uow:
        return [r.resource_crn for r in uow.registrations.find(q)]


def test_add_and_get_round_trip_every_field(any_store: AnyStore) -> None:
    full = reg(
        "k-full",
        prevent_key_deletion=True,
        description="ünïcödé 'description' \\ with \"quotes\"",
        registration_metadata='{"opaque": [1, 2, 3]}',
        created_at=f.at(1),
        updated_at=f.at(2),
        updated_by="other service",
        key_version_id="v-7",
    )
    minimal = reg("k-min")
    with any_store.uow() as uow:
        uow.registrations.add(full)
        uow.registrations.add(minimal)
        uow.commit()
    with any_store.uow() as uow:
        got = uow.registrations.get(f.INSTANCE, "k-full", full.resource_crn)
        assert got == full and got is not None and got.prevent_key_deletion is True
        assert uow.registrations.get(f.INSTANCE, "k-min", minimal.resource_crn) == minimal
        assert uow.registrations.get(f.INSTANCE, "k-min", minimal.resource_crn.upper()) is None
        assert uow.registrations.get(OTHER, "k-min", minimal.resource_crn) is None
        assert uow.registrations.get(f.INSTANCE, "k-full", minimal.resource_crn) is not None


def test_a_duplicate_registration_is_already_exists(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg())
        with pytest.raises(AlreadyExists):
            uow.registrations.add(reg(description="again"))
        uow.registrations.add(reg("key-2"))  # the same CRN on another key
        uow.registrations.add(reg(instance_id=OTHER))  # or in another instance
        uow.commit()
    with any_store.uow() as uow:
        with pytest.raises(AlreadyExists):
            uow.registrations.add(reg())
        uow.registrations.add(reg(crn=f"{CRN}bucket:b2"))  # still usable
        uow.commit()
    with any_store.uow() as uow:
        got = uow.registrations.get(f.INSTANCE, "key-1", reg().resource_crn)
        assert got == reg()
        assert uow.registrations.count(query()) == 3


def test_update_and_delete(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg())
        uow.commit()
    changed = dataclasses.replace(
        reg(),
        prevent_key_deletion=True,
        description="now described",
        registration_metadata="m",
        key_version_id="v-2",
        updated_at=f.at(9),
        updated_by="someone",
    )
    with any_store.uow() as uow:
        assert uow.registrations.update(changed) is True
        assert uow.registrations.update(reg("ghost")) is False
        uow.commit()
    with any_store.uow() as uow:
        assert uow.registrations.get(f.INSTANCE, "key-1", changed.resource_crn) == changed
        assert uow.registrations.get(f.INSTANCE, "ghost", changed.resource_crn) is None
        assert uow.registrations.delete(f.INSTANCE, "key-1", changed.resource_crn) is True
        assert uow.registrations.delete(f.INSTANCE, "key-1", changed.resource_crn) is False
        assert uow.registrations.update(changed) is False
        uow.commit()
    with any_store.uow() as uow:
        assert uow.registrations.count(query()) == 0
        uow.registrations.add(reg())  # free again
        uow.commit()


def test_update_of_a_registration_removed_meanwhile_does_not_revive_it(
    any_store: AnyStore,
) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg())
        uow.commit()
    with any_store.uow() as remover:
        assert remover.registrations.delete(f.INSTANCE, "key-1", reg().resource_crn)
        remover.commit()
    with any_store.uow() as updater:
        assert updater.registrations.update(reg(description="x")) is False
        updater.commit()
    with any_store.uow() as uow:
        assert uow.registrations.count(query()) == 0


def test_an_update_racing_a_removal_never_revives_the_registration(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg())
        uow.commit()

    def update(first_wrote: threading.Event, second_started: threading.Event) -> None:
        with any_store.uow() as uow:
            assert uow.registrations.update(reg(description="updated"))
            first_wrote.set()
            assert second_started.wait(TIMEOUT)
            time.sleep(0.1)
            uow.commit()

    def remove(first_wrote: threading.Event, second_started: threading.Event) -> None:
        assert first_wrote.wait(TIMEOUT)
        with any_store.uow() as uow:
            second_started.set()
            assert uow.registrations.delete(f.INSTANCE, "key-1", reg().resource_crn)
            uow.commit()

    outcomes = _race(update, remove)
    # SQL: the removal waits for the update, then removes the row; the memory store does
    # not wait: the removal commits first and the update's commit conflicts
    assert outcomes[1] is None, outcomes
    assert outcomes[0] is None or isinstance(outcomes[0], VersionConflict), outcomes
    with any_store.uow() as uow:
        assert uow.registrations.count(query()) == 0


def test_find_and_count_by_key_in_key_then_crn_order(any_store: AnyStore) -> None:
    records = [
        reg("k2", f"{CRN}bucket:a"),
        reg("k1", f"{CRN}bucket:b"),
        reg("k1", f"{CRN}bucket:a"),
        reg("k1", f"{CRN}bucket:B"),
        reg("k3", f"{CRN}bucket:a"),
        reg("k1", f"{CRN}bucket:z", instance_id=OTHER),
    ]
    with any_store.uow() as uow:
        for record in records:
            uow.registrations.add(record)
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        everything = uow.registrations.find(query())
        assert [(r.key_id, r.resource_crn[-1]) for r in everything] == [
            ("k1", "B"),  # code point order: "B" < "a" < "b"
            ("k1", "a"),
            ("k1", "b"),
            ("k2", "a"),
            ("k3", "a"),
        ]
        assert uow.registrations.count(query()) == 5
        k1 = uow.registrations.find(query(key_id="k1"))
        assert [r.resource_crn[-1] for r in k1] == ["B", "a", "b"]
        assert uow.registrations.count(query(key_id="k1")) == 3
        assert uow.registrations.count(query(key_id="nope")) == 0
        assert uow.registrations.count(query(instance_id=OTHER)) == 1


def test_paging(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        for i in range(7):
            uow.registrations.add(reg(f"k{i % 2}", f"{CRN}bucket:{i}"))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        everything = uow.registrations.find(query())
        assert len(everything) == 7
        pages = [uow.registrations.find(query(limit=3, offset=o)) for o in (0, 3, 6, 9)]
        assert [len(p) for p in pages] == [3, 3, 1, 0]
        assert [r for p in pages for r in p] == everything
        assert uow.registrations.count(query(limit=1, offset=5)) == 7
        assert uow.registrations.find(query(limit=0)) == []
        assert len(uow.registrations.find(query(key_id="k0", limit=2, offset=3))) == 1
        with pytest.raises(ValueError):
            uow.registrations.find(query(limit=-1))
        with pytest.raises(ValueError):
            uow.registrations.count(query(offset=-1))


def test_prevent_key_deletion_filter(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg("k1", f"{CRN}a", prevent_key_deletion=True))
        uow.registrations.add(reg("k1", f"{CRN}b"))
        uow.registrations.add(reg("k2", f"{CRN}c", prevent_key_deletion=True))
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        held = uow.registrations.find(query(prevent_key_deletion=True))
        assert [(r.key_id, r.resource_crn) for r in held] == [("k1", f"{CRN}a"), ("k2", f"{CRN}c")]
        free = uow.registrations.find(query(prevent_key_deletion=False))
        assert [r.resource_crn for r in free] == [f"{CRN}b"]
        assert uow.registrations.count(query(key_id="k1", prevent_key_deletion=True)) == 1
        assert uow.registrations.count(query(key_id="k2", prevent_key_deletion=False)) == 0


CORPUS = [
    "crn:v1:bluemix:public:cos:us-south:a/1::bucket:b1",
    "crn:v1:bluemix:public:cos:eu-de:a/1::bucket:b2",
    "crn:v1:bluemix:public:databases:us-south:a/1::db:x",
    "CRN:V1:BLUEMIX:PUBLIC:COS:US-SOUTH:A/1::BUCKET:B1",
    "crn:v1:x:100%",
    "crn:v1:x:100x",
    "crn:v1:x:a_b",
    "crn:v1:x:axb",
    "crn:v1:x:a\\b",
    "crn:v1:x:a?b",
    "crn:v1:x:[ab]",
    "crn:v1:x:a*b",
    "crn:v1:x:line\nbreak",
    "",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", CORPUS),
        ("", [""]),
        ("crn:v1:bluemix:public:cos:us-south:a/1::bucket:b1", [CORPUS[0]]),
        ("crn:v1:bluemix:public:cos:*", CORPUS[0:2]),
        ("crn:v1:bluemix:*:us-south:*", [CORPUS[0], CORPUS[2]]),
        ("*bucket:b*", CORPUS[0:2]),
        ("*:b1", [CORPUS[0]]),  # case-sensitive: not the upper-case CRN
        ("CRN:*", [CORPUS[3]]),
        ("crn:v1:bluemix:public:cos", []),  # the whole CRN must match
        ("crn:v1:x:100%", [CORPUS[4]]),  # % is literal
        ("crn:v1:x:a_b", [CORPUS[6]]),  # _ is literal
        ("crn:v1:x:a\\b", [CORPUS[8]]),  # \ is literal
        ("crn:v1:x:a?b", [CORPUS[9]]),  # ? is literal (no GLOB meaning either)
        ("crn:v1:x:[ab]", [CORPUS[10]]),  # [ is literal
        ("crn:v1:x:a*b", [*CORPUS[6:10], CORPUS[11]]),  # * is never literal
        ("crn:v1:x:*%", [CORPUS[4]]),
        ("*line*", [CORPUS[12]]),
        ("crn:v1:x:line*", [CORPUS[12]]),  # * spans a newline
        ("**b1", [CORPUS[0]]),
    ],
)
def test_crn_patterns(any_store: AnyStore, pattern: str, expected: list[str]) -> None:
    with any_store.uow() as uow:
        for crn in CORPUS:
            uow.registrations.add(reg("k1", crn))
        uow.registrations.add(reg("k2", CORPUS[0]))
        uow.commit()
    q = query(key_id="k1", crn_pattern=pattern)
    assert crns(any_store, q) == sorted(expected)
    with any_store.uow(read_only=True) as uow:
        assert uow.registrations.count(q) == len(expected)
        with_k2 = uow.registrations.count(query(crn_pattern=pattern))
        assert with_k2 == len(expected) + (CORPUS[0] in expected)


def test_delete_for_key(any_store: AnyStore) -> None:
    with any_store.uow() as uow:
        uow.registrations.add(reg("k1", f"{CRN}a"))
        uow.registrations.add(reg("k1", f"{CRN}b"))
        uow.registrations.add(reg("k2", f"{CRN}a"))
        uow.registrations.add(reg("k1", f"{CRN}a", instance_id=OTHER))
        uow.commit()
    with any_store.uow() as uow:
        assert uow.registrations.delete_for_key(f.INSTANCE, "k1") == 2
        assert uow.registrations.delete_for_key(f.INSTANCE, "k1") == 0
        uow.commit()
    with any_store.uow(read_only=True) as uow:
        assert uow.registrations.count(query(key_id="k1")) == 0
        assert uow.registrations.count(query(key_id="k2")) == 1
        assert uow.registrations.count(query(instance_id=OTHER)) == 1


# ------------------------------------------------------------------ crn_pattern properties


def reference_crn_match(pattern: str, crn: str) -> bool:
    """``*`` matches any run of characters, everything else itself; the whole CRN.

    Dynamic programming over (pattern, CRN) prefixes, independent of the store's regexes.
    """
    n = len(crn)
    # row[j]: pattern[:i] matches crn[:j]
    row = [True] + [False] * n
    for p in pattern:
        if p == "*":
            new = [row[0]] + [False] * n
            for j in range(1, n + 1):
                new[j] = new[j - 1] or row[j]
        else:
            new = [False] + [row[j - 1] and crn[j - 1] == p for j in range(1, n + 1)]
        row = new
    return row[n]


def test_the_reference_matcher() -> None:
    assert reference_crn_match("a*c", "abbbc")
    assert reference_crn_match("*", "")
    assert reference_crn_match("", "")
    assert not reference_crn_match("", "a")
    assert not reference_crn_match("a*c", "abcd")
    assert reference_crn_match("a**", "a")
    assert not reference_crn_match("a_c", "abc")


# Characters with a meaning to LIKE, GLOB, regexes or case folding, drawn often so that CRNs
# and patterns collide; plus any text both databases can hold (no NUL, no surrogates).
SPECIAL = st.sampled_from(
    ["%", "_", "\\", "?", "[", "]", "*", ".", "^", "$", "a", "A", "b", "ß", "\n", ":"]
)
CHARS = st.one_of(SPECIAL, st.characters(codec="utf-8", exclude_characters="\x00"))
CRN_TEXT = st.text(CHARS, max_size=10)

_instances = itertools.count()


@st.composite
def crn_corpus_and_patterns(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    corpus = draw(st.lists(CRN_TEXT, min_size=1, max_size=8, unique=True))

    @st.composite
    def pattern(draw2: st.DrawFn) -> str:
        if draw2(st.booleans()):
            return draw2(st.text(st.one_of(SPECIAL, st.just("*")), max_size=6))
        # a CRN of the corpus with some runs replaced by "*"
        value = draw2(st.sampled_from(corpus))
        out: list[str] = []
        i = 0
        while i < len(value):
            if draw2(st.integers(0, 3)) == 0:
                i = draw2(st.integers(i, len(value)))
                out.append("*")
            else:
                out.append(value[i])
                i += 1
        return "".join(out)

    patterns = draw(st.lists(pattern(), min_size=1, max_size=6))
    return corpus, patterns


@settings(
    max_examples=40,
    deadline=None,
    # the store outlives the examples on purpose: each example uses a new instance id
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=crn_corpus_and_patterns())
def test_crn_pattern_matches_like_the_reference(
    any_store: AnyStore, case: tuple[list[str], list[str]]
) -> None:
    corpus, patterns = case
    instance_id = f"prop-{next(_instances)}"
    with any_store.uow() as uow:
        for crn in corpus:
            uow.registrations.add(reg("k", crn, instance_id=instance_id))
        uow.commit()
    for pattern in patterns:
        expected = sorted(c for c in corpus if reference_crn_match(pattern, c))
        q = RegistrationQuery(instance_id=instance_id, crn_pattern=pattern)
        with any_store.uow(read_only=True) as uow:
            got = [r.resource_crn for r in uow.registrations.find(q)]
            assert got == expected, (pattern, corpus)
            assert uow.registrations.count(q) == len(expected)
