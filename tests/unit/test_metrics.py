"""`Metrics`: one registry per app, live readings at scrape time, overflows counted."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from durachat import events
from durachat.api.watched_outbox import WatchedOutbox
from durachat.metrics import Metrics
from durachat.store.base import StoreStats


@dataclass
class _Runner:
    text_events: int = 0
    active: int = 0


@dataclass
class _Bus:
    total_sockets: int = 0


@dataclass
class _Store:
    stats: StoreStats


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_plain_counters_are_read_when_scraped() -> None:
    metrics, runner, bus = Metrics(), _Runner(), _Bus()
    store = _Store(StoreStats())
    metrics.watch(runner, bus, store)
    runner.text_events, runner.active, bus.total_sockets = 42, 2, 7
    store.stats.flush_transactions, store.stats.flush_seconds_total = 3, 0.25
    found = samples(metrics)
    assert found[("durachat_text_events_total", ())] == 42
    assert found[("durachat_active_generations", ())] == 2
    assert found[("durachat_connected_sockets", ())] == 7
    assert found[("durachat_flush_transactions_total", ())] == 3
    assert found[("durachat_flush_seconds_total", ())] == 0.25
    runner.text_events = 43
    assert samples(metrics)[("durachat_text_events_total", ())] == 43


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the same names twice: no clash
    first.reply_ended("complete")
    first.first_token("demo", 0.02)
    first.provider_error("openai", "rate_limited")
    first.flushed(0.003)
    first.resumed("delta")
    found = samples(first)
    assert found[("durachat_replies_total", (("status", "complete"),))] == 1
    assert found[("durachat_replies_total", (("status", "error"),))] == 0
    count = "durachat_provider_first_token_seconds_count"
    assert found[(count, (("provider", "demo"),))] == 1
    errors = "durachat_provider_errors_total"
    assert found[(errors, (("code", "rate_limited"), ("provider", "openai")))] == 1
    assert found[("durachat_flush_duration_seconds_count", ())] == 1
    assert found[("durachat_resumes_total", (("kind", "delta"),))] == 1
    assert samples(second)[("durachat_replies_total", (("status", "complete"),))] == 0


async def test_an_overflow_counts_its_dropped_frames_and_resyncs() -> None:
    metrics = Metrics()
    outbox = WatchedOutbox("u", 3, metrics)
    outbox.conversations.update({"c", "d"})
    for seq in range(1, 4):
        outbox.push(events.text("c", "m", seq, "x"))
    assert samples(metrics)[("durachat_resyncs_total", ())] == 0
    outbox.push(events.text("c", "m", 4, "x"))  # the fourth does not fit
    found = samples(metrics)
    assert found[("durachat_dropped_frames_total", ())] == 4
    assert found[("durachat_resyncs_total", ())] == 2, "one per subscribed conversation"
    assert len(outbox) == 2, "the queue now holds the two resync frames"
