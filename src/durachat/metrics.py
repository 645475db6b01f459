"""The Prometheus metrics of one server: its registry, every metric name, and how
each figure is taken.

Each app has a `CollectorRegistry` of its own (tests build many apps in one
process), owned by `Metrics` and held by `Services`. Figures come two ways:

- events that happen once per reply, flush, resume or overflow are recorded as
  they happen, in prometheus-client `Counter`s and `Histogram`s (`reply_ended`,
  `first_token`, `provider_error`, `flushed`, `resumed`, `overflowed`);
- figures that move per text chunk or per socket (chunks streamed, connected
  sockets, active replies, the store's write counters) stay plain ints kept by
  their owners, and are read only when `/metrics` is scraped (`watch`).

It must never be called per text chunk: a metric object's lock and label lookup
would cost more than the rest of that path (SPEC.md section 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from durachat.store.base import StoreStats

REPLY_STATUSES = ("complete", "cancelled", "interrupted", "error")
"""The final statuses a reply can end with."""

RESUME_KINDS = ("delta", "full", "snapshot")
"""`delta`: a resume position was given and only the frames after it were sent;
`full`: a position was given but was too old (or foreign), so a whole `catchup` was
sent; `snapshot`: no position (a first subscribe), a `catchup`."""

FLUSH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RunnerFigures(Protocol):
    """What `/metrics` reads of the runner at scrape time."""

    text_events: int

    @property
    def active(self) -> int: ...


class BusFigures(Protocol):
    @property
    def total_sockets(self) -> int: ...


class StoreFigures(Protocol):
    stats: StoreStats


class _Live(Collector):
    """Reads the plain counters of runner, bus and store when scraped."""

    def __init__(self, runner: RunnerFigures, bus: BusFigures, store: StoreFigures) -> None:
        self._runner = runner
        self._bus = bus
        self._store = store

    def collect(self) -> Iterator[Metric]:
        runner, stats = self._runner, self._store.stats
        yield GaugeMetricFamily(
            "durachat_connected_sockets",
            "WebSockets and SSE streams connected now.",
            value=self._bus.total_sockets,
        )
        yield GaugeMetricFamily(
            "durachat_active_generations",
            "Replies being generated now.",
            value=runner.active,
        )
        yield CounterMetricFamily(
            "durachat_text_events_total",
            "Text chunks streamed by replies (rate() of this is chunks/s).",
            value=runner.text_events,
        )
        yield CounterMetricFamily(
            "durachat_db_write_transactions_total",
            "Database write transactions of every kind.",
            value=stats.write_transactions,
        )
        yield CounterMetricFamily(
            "durachat_flush_transactions_total",
            "Group-commit transactions that wrote streaming replies.",
            value=stats.flush_transactions,
        )
        yield CounterMetricFamily(
            "durachat_flushed_items_total",
            "Reply writes inside those transactions (one per reply per flush).",
            value=stats.flushed_items,
        )
        yield CounterMetricFamily(
            "durachat_flush_seconds_total",
            "Seconds spent in group-commit transactions.",
            value=stats.flush_seconds_total,
        )


class Metrics:
    """The metrics of one app; record per-event figures through its methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        replies = Counter(
            "durachat_replies",
            "Replies that ended, by final status.",
            ["status"],
            registry=registry,
        )
        self._replies = {status: replies.labels(status) for status in REPLY_STATUSES}
        self._first_token = Histogram(
            "durachat_provider_first_token_seconds",
            "Seconds from sending a request to a provider to its first event, by provider.",
            ["provider"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self._provider_errors = Counter(
            "durachat_provider_errors",
            "Replies ended by a provider error, by provider and error code.",
            ["provider", "code"],
            registry=registry,
        )
        self._flush = Histogram(
            "durachat_flush_duration_seconds",
            "Seconds per group-commit flush (waiting for the writer included).",
            buckets=FLUSH_BUCKETS,
            registry=registry,
        )
        resumes = Counter(
            "durachat_resumes",
            "Clients brought up to date on a conversation, by kind (delta, full, snapshot).",
            ["kind"],
            registry=registry,
        )
        self._resumes = {kind: resumes.labels(kind) for kind in RESUME_KINDS}
        self._resyncs = Counter(
            "durachat_resyncs",
            "resync frames sent: a slow socket's outbox overflowed (one per subscribed "
            "conversation).",
            registry=registry,
        )
        self._dropped = Counter(
            "durachat_dropped_frames",
            "Frames discarded when a slow socket's outbox overflowed.",
            registry=registry,
        )

    def watch(self, runner: RunnerFigures, bus: BusFigures, store: StoreFigures) -> None:
        """Expose the plain counters of the running parts (read at scrape time)."""
        self.registry.register(_Live(runner, bus, store))

    def reply_ended(self, status: str) -> None:
        self._replies[status].inc()

    def first_token(self, provider: str, seconds: float) -> None:
        self._first_token.labels(provider).observe(seconds)

    def provider_error(self, provider: str, code: str) -> None:
        self._provider_errors.labels(provider, code).inc()

    def flushed(self, seconds: float) -> None:
        self._flush.observe(seconds)

    def resumed(self, kind: str) -> None:
        self._resumes[kind].inc()

    def overflowed(self, dropped_frames: int, resyncs: int) -> None:
        self._dropped.inc(dropped_frames)
        self._resyncs.inc(resyncs)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for a scrape with this `Accept` header, and its content type
        (Prometheus text, or OpenMetrics when asked for)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
