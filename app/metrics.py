"""Prometheus metrics. With several server processes, PROMETHEUS_MULTIPROC_DIR is set by `serve`
and /metrics adds up every process's files."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("pinhole_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "pinhole_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SIGNUPS = Counter("pinhole_signups_total", "Accounts created")
POSTS = Counter("pinhole_posts_total", "Posts created")
QUEUE_DEPTH = Gauge("pinhole_queue_depth", "Tasks waiting in the queue", multiprocess_mode="max")

__all__ = ["CONTENT_TYPE_LATEST", "REQUESTS", "LATENCY", "SIGNUPS", "POSTS", "QUEUE_DEPTH", "render"]


def render() -> bytes:
    """The text exposition of every metric, across processes when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
