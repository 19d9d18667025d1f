"""The Queue seam: named tasks run by workers in the server or on worker nodes.

Delivery is at most once (a task running when its worker dies is lost), so every task must be
idempotent and every object it works on must record its own state for a periodic sweep to find.
Tasks are registered by name at start-up in every process (server and workers) from the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol


class ConsumerHandle(Protocol):
    def stop(self) -> None: ...

    def alive(self) -> bool: ...


class Queue(ABC):
    @abstractmethod
    def register(self, name: str, fn: Callable[..., Any], retries: int, retry_delay: int = 10) -> None:
        """Make `fn` runnable by name; a failing run is retried `retries` times, then logged."""

    @abstractmethod
    def register_periodic(self, name: str, fn: Callable[[], Any], every_minutes: int = 1) -> None:
        """Run `fn` on a schedule (the sweeps): once per period across every consumer of this queue."""

    @abstractmethod
    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None: ...

    @abstractmethod
    def pending(self) -> int:
        """Tasks waiting to run (the queue-depth metric)."""

    @abstractmethod
    def run_pending(self, limit: int = 1000) -> int:
        """Run queued tasks in this thread until none is left; return how many ran (tests, CLI)."""

    @abstractmethod
    def start_consumer(self, workers: int) -> ConsumerHandle:
        """Worker threads inside this process (the embedded workers of `serve`)."""

    @abstractmethod
    def run_consumer(self, workers: int) -> None:
        """Consume until SIGINT/SIGTERM (a worker node)."""

    @abstractmethod
    def check(self) -> str: ...
