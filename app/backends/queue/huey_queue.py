"""Queue over any Huey storage; each backend file builds the Huey instance and hands it here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from huey import Huey, crontab
from huey.consumer import Consumer

from app.backends.queue.base import ConsumerHandle, Queue

log = logging.getLogger("pinhole.queue")


class _QuietConsumer(Consumer):
    """Embedded in the web server, which owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        pass


class _EmbeddedConsumer:
    def __init__(self, consumer: Consumer):
        self.consumer = consumer

    def stop(self) -> None:
        self.consumer.stop(graceful=True)

    def alive(self) -> bool:
        threads = [t for _, t in self.consumer.worker_threads]
        return bool(threads) and all(t.is_alive() for t in threads) and not self.consumer.stop_flag.is_set()


class HueyQueue(Queue):
    def __init__(self, huey: Huey, description: str):
        self.huey = huey
        self.description = description
        self._tasks: dict[str, Any] = {}

    def register(self, name: str, fn: Callable[..., Any], retries: int, retry_delay: int = 10) -> None:
        self._tasks[name] = self.huey.task(retries=retries, retry_delay=retry_delay, name=name)(fn)

    def register_periodic(self, name: str, fn: Callable[[], Any], every_minutes: int = 1) -> None:
        schedule = crontab(minute="*" if every_minutes == 1 else f"*/{every_minutes}")
        self._tasks[name] = self.huey.periodic_task(schedule, name=name)(fn)

    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None:
        task = self._tasks[name]
        if delay:
            task.schedule(args=args, delay=delay)
        else:
            task(*args)

    def pending(self) -> int:
        return self.huey.pending_count()

    def run_pending(self, limit: int = 1000) -> int:
        ran = 0
        while ran < limit:
            task = self.huey.dequeue()
            if task is None:
                break
            self.huey.execute(task)
            ran += 1
        return ran

    def _consumer(self, cls: type[Consumer], workers: int) -> Consumer:
        # Poll often when idle so a posted photo is picked up within a fraction of a second.
        return cls(self.huey, workers=workers, worker_type="thread", initial_delay=0.05, backoff=1.2, max_delay=0.5)

    def start_consumer(self, workers: int) -> ConsumerHandle:
        consumer = self._consumer(_QuietConsumer, workers)
        consumer.start()
        return _EmbeddedConsumer(consumer)

    def run_consumer(self, workers: int) -> None:
        self._consumer(Consumer, workers).run()

    def check(self) -> str:
        return f"{self.description} ({self.pending()} pending)"
