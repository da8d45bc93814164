"""Prometheus metrics of the function runtime (``GET /metrics``), on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Restores take about a millisecond on the fork engine and a tenth of a second on a VM.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, function: str) -> None:
        disable_created_metrics()  # the *_created series only add noise here
        self.registry = CollectorRegistry()
        labels = ["function"]
        self.function = function
        self.invocations = Counter("snapsafe_invocations", "Invocations answered, by outcome",
                                   labels + ["outcome"], registry=self.registry)
        self.errors = Counter("snapsafe_errors", "Invocation errors by Lambda error type",
                              labels + ["error_type"], registry=self.registry)
        self.starts = Counter("snapsafe_starts", "Invocations by start kind: cold (waited for a restore) or warm",
                              labels + ["kind"], registry=self.registry)
        self.restore_seconds = Histogram("snapsafe_restore_seconds", "Restore of a clone until it may serve",
                                         labels, buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.unique_seconds = Histogram("snapsafe_unique_seconds", "Time a clone took to become unique",
                                        labels, buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.invoke_seconds = Histogram("snapsafe_invoke_seconds", "Invocation round trip to a clone",
                                        labels, buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.clones = Gauge("snapsafe_clones", "Clones by state", labels + ["state"], registry=self.registry)
        self.retired = Counter("snapsafe_clones_retired", "Clones closed, by reason",
                               labels + ["reason"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
