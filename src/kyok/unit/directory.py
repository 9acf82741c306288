"""Finding, creating and caching the crypto units of a node."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from kyok.clock import Clock
from kyok.errors import InvalidInput
from kyok.unit.errors import UnitNotFound
from kyok.unit.ports import UnitStateStore
from kyok.unit.seal import SealProvider
from kyok.unit.unit import CryptoUnit


class UnitDirectory:
    """The units of one node: opened once, kept in memory (they hold the master keys)."""

    def __init__(
        self,
        store: UnitStateStore,
        seals: Mapping[str, SealProvider],
        clock: Clock,
        *,
        cache_size: int = 100_000,
    ) -> None:
        self._store = store
        self._seals = dict(seals)
        self._clock = clock
        self._cache_size = cache_size
        self._units: dict[str, CryptoUnit] = {}
        self._by_instance: dict[str, str] = {}
        self._lock = threading.Lock()
        self._on_change: Callable[[CryptoUnit, bool], None] | None = None
        self._on_forget: Callable[[CryptoUnit, str], None] | None = None
        self._shared: dict[str, dict[int, bytes]] = {}  # from sibling workers, not yet opened

    @property
    def seal_kinds(self) -> frozenset[str]:
        """The seal providers this node offers."""
        return frozenset(self._seals)

    def get(self, unit_id: str) -> CryptoUnit:
        """The unit ``unit_id`` (opened and, if its seal allows, unsealed on first use)."""
        unit = self._units.get(unit_id)
        if unit is not None:
            return unit
        with self._lock:
            unit = self._units.get(unit_id)
            if unit is None:
                unit = CryptoUnit.open(
                    self._store, unit_id, self._seals, self._clock, cache_size=self._cache_size
                )
                shared = self._shared.pop(unit_id, None)
                if shared is not None:
                    unit.adopt(shared)
                self._watch(unit)
                self._units[unit_id] = unit
            return unit

    def observe(
        self,
        on_change: Callable[[CryptoUnit, bool], None],
        on_forget: Callable[[CryptoUnit, str], None],
    ) -> None:
        """Be told of every unit's changes (see :attr:`CryptoUnit.on_change`), now and for units
        opened later. The node link of a multi-worker node uses it."""
        with self._lock:
            self._on_change = on_change
            self._on_forget = on_forget
            for unit in self._units.values():
                self._watch(unit)

    def adopt(self, unit_id: str, keys: Mapping[int, bytes]) -> None:
        """Hold the master keys a sibling worker of this node holds for ``unit_id``
        (:meth:`CryptoUnit.adopt`); a unit not opened yet takes them when it opens."""
        with self._lock:
            unit = self._units.get(unit_id)
            if unit is None:
                self._shared[unit_id] = dict(keys)
                return
        unit.adopt(keys)

    def _watch(self, unit: CryptoUnit) -> None:
        unit.on_change = self._on_change
        unit.on_forget = self._on_forget

    def for_instance(self, instance_id: str) -> CryptoUnit:
        """The unit of ``instance_id``.

        Raises:
            UnitNotFound: the instance has no unit.
        """
        unit_id = self._by_instance.get(instance_id)
        if unit_id is None:
            unit_id = self._store.unit_for_instance(instance_id)
            if unit_id is None:
                raise UnitNotFound(f"instance {instance_id} has no crypto unit")
            self._by_instance[instance_id] = unit_id  # an instance never changes its unit
        return self.get(unit_id)

    def create_for_instance(self, instance_id: str, seal: str) -> CryptoUnit:
        """Create the unit of a new instance; a ``dev`` unit gets its master key at once."""
        provider = self._seals.get(seal)
        if provider is None:
            raise InvalidInput(
                f"seal provider {seal!r} is not available on this node (have: {', '.join(sorted(self._seals))})"
            )
        unit = CryptoUnit.create(
            self._store,
            instance_id=instance_id,
            seal=provider,
            clock=self._clock,
            cache_size=self._cache_size,
        )
        with self._lock:
            self._watch(unit)
        if seal == "dev":
            unit.bootstrap_dev()
        with self._lock:
            self._units[unit.unit_id] = unit
        return unit

    def forget(self, unit_id: str) -> None:
        """Drop a unit from memory (sealing it)."""
        with self._lock:
            unit = self._units.pop(unit_id, None)
        if unit is not None:
            unit.seal()

    def loaded_unit(self, unit_id: str) -> CryptoUnit | None:
        """The unit ``unit_id`` if this process has opened it (None: not opened; never opens)."""
        return self._units.get(unit_id)

    def loaded(self) -> list[CryptoUnit]:
        """The units opened so far."""
        return list(self._units.values())
