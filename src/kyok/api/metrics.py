"""Prometheus metrics of one application (its own registry, so several apps can coexist).

* ``kyok_http_requests_total{method, route, status}`` and
  ``kyok_http_request_duration_seconds{method, route}``: every request, labelled by the route
  *template* (``/api/v2/keys/{id}``), never by a raw path;
* ``kyok_key_operations_total{operation, outcome}``: key operations (create, wrap, rotate ...),
  outcome ``success``, ``client_error`` or ``server_error``;
* ``kyok_units`` and ``kyok_units_sealed``: the node's crypto units, read at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kyok.api.ports import UnitInfo

__all__ = ["Metrics"]

log = logging.getLogger("kyok.api")

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _UnitCollector(Collector):
    """Reads the units at scrape time."""

    def __init__(self, overview: Callable[[], Sequence[UnitInfo]]) -> None:
        self._overview = overview

    def collect(self) -> Iterator[Metric]:
        try:
            units = self._overview()
        except Exception:
            log.warning("metrics: the unit overview failed (store unavailable?)")
            return
        total = GaugeMetricFamily("kyok_units", "Crypto units of this node")
        sealed = GaugeMetricFamily("kyok_units_sealed", "Crypto units that are sealed")
        total.add_metric([], len(units))
        sealed.add_metric([], sum(1 for u in units if u.sealed))
        yield total
        yield sealed


class _LedgerCollector(Collector):
    """Reads the group committer's counters at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, help_text, kind in (
            ("events", "Audit events group-committed by this process", "counter"),
            ("batches", "Group commits (transactions) of this process", "counter"),
            ("failed_batches", "Group commits that could not be written", "counter"),
            ("deferred", "Events of fail-open calls waiting for the ledger", "gauge"),
            ("dropped", "Fail-open events dropped because too many waited", "counter"),
        ):
            family = (
                CounterMetricFamily(f"kyok_audit_{name}", help_text)
                if kind == "counter"
                else GaugeMetricFamily(f"kyok_audit_{name}", help_text)
            )
            family.add_metric([], stats.get(name, 0))
            yield family


class Metrics:
    """The application's metrics.

    Args:
        overview: lists the node's units (for the unit gauges).
        ledger_stats: the audit group committer's counters (``kyok_audit_*``).
    """

    def __init__(
        self,
        overview: Callable[[], Sequence[UnitInfo]],
        ledger_stats: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kyok_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kyok_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.key_operations = Counter(
            "kyok_key_operations",
            "Key operations by operation and outcome",
            ["operation", "outcome"],
            registry=self.registry,
        )
        # The labelled children of each (method, route, status, operation) seen: labels() checks
        # and locks on every call, and the set is small (route templates, not paths).
        self._children: dict[tuple[str, str, int, str], tuple[Any, Any, Any]] = {}
        self.registry.register(_UnitCollector(overview))
        if ledger_stats is not None:
            self.registry.register(_LedgerCollector(ledger_stats))

    def observe(self, method: str, route: str, status: int, seconds: float, key_op: str) -> None:
        """Record one finished request.

        Args:
            method: the HTTP method.
            route: the route template, or ``unmatched``.
            status: the response status.
            seconds: how long it took.
            key_op: the key operation's name, or "" for other requests.
        """
        found = self._children.get((method, route, status, key_op))
        if found is None:
            found = self._labelled(method, route, status, key_op)
        requests, latency, operation = found
        requests.inc()
        latency.observe(seconds)
        if operation is not None:
            operation.inc()

    def _labelled(self, method: str, route: str, status: int, key_op: str) -> tuple[Any, Any, Any]:
        """The children for one label set (remembered; at most a few thousand sets)."""
        operation = None
        if key_op:
            outcome = (
                "success" if status < 400 else "client_error" if status < 500 else "server_error"
            )
            operation = self.key_operations.labels(key_op, outcome)
        found = (
            self.requests.labels(method, route, str(status)),
            self.latency.labels(method, route),
            operation,
        )
        if len(self._children) < 4096:
            self._children[(method, route, status, key_op)] = found
        return found

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
