"""Queue over any Huey storage; each backend file builds the Huey instance and hands it here."""

from __future__ import annotations

import datetime
import logging
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from huey import Huey, crontab
from huey.consumer import Consumer, Scheduler

from app.backends.queue.base import ConsumerHandle, Queue

log = logging.getLogger("pinhole.queue")

STOP_WAIT_SECONDS = 2.0  # how long a stopped consumer waits for its workers to finish their current dequeue


class _SiteWideScheduler(Scheduler):
    """Enqueues a periodic task only for the consumer that claims its minute first.

    Every consumer (each `main.py worker`, each `serve` with embedded workers) runs a scheduler that checks the
    periodic tasks once a minute, each at its own second; without the claim each sweep would run once per consumer.
    """

    def __init__(self, *args: Any, claim: Callable[[str, int], bool], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.claim = claim

    def enqueue_periodic_tasks(self, now: datetime.datetime | None) -> None:
        minute = int(time.time() // 60)
        # Huey's crontabs read naive UTC; the minute is computed once so the claim and the match agree.
        moment = datetime.datetime.fromtimestamp(minute * 60, datetime.UTC).replace(tzinfo=None)
        for task in self.huey.read_periodic(moment):
            try:
                if not self.claim(task.name, minute):
                    log.debug("periodic task %s: another consumer enqueued this minute's run", task.name)
                    continue
                self.huey.enqueue(task)
            except Exception:  # the queue's store is down: the next minute tries again
                log.exception("could not enqueue periodic task %s", task.name)


class _Consumer(Consumer):
    def __init__(self, huey: Huey, claim: Callable[[str, int], bool], **kwargs: Any):
        self.claim = claim  # before Consumer.__init__, which makes the scheduler
        super().__init__(huey, **kwargs)

    def _create_scheduler(self) -> Scheduler:
        return _SiteWideScheduler(
            huey=self.huey,
            stop_flag=self.stop_flag,
            interval=self.scheduler_interval,
            periodic=self.periodic,
            claim=self.claim,
        )


class _QuietConsumer(_Consumer):
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
    """Each backend file gives the Huey storage and claim_minute, whose claims live where the queue does, so every
    consumer of the queue shares them."""

    def __init__(self, huey: Huey, description: str):
        self.huey = huey
        self.description = description
        self._tasks: dict[str, Any] = {}

    def register(self, name: str, fn: Callable[..., Any], retries: int, retry_delay: int = 10) -> None:
        self._tasks[name] = self.huey.task(retries=retries, retry_delay=retry_delay, name=name)(fn)

    def register_periodic(self, name: str, fn: Callable[[], Any], every_minutes: int = 1) -> None:
        schedule = crontab(minute="*" if every_minutes == 1 else f"*/{every_minutes}")
        self._tasks[name] = self.huey.periodic_task(schedule, name=name)(fn)

    @abstractmethod
    def claim_minute(self, name: str, minute: int) -> bool:
        """True for the first caller, across every consumer of this queue, of this task and minute (Unix time // 60)."""

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

    def _consumer(self, cls: type[_Consumer], workers: int) -> Consumer:
        # Poll often when idle so a posted photo is picked up within a fraction of a second.
        return cls(
            self.huey,
            self.claim_minute,
            workers=workers,
            worker_type="thread",
            initial_delay=0.05,
            backoff=1.2,
            max_delay=0.5,
        )

    def start_consumer(self, workers: int) -> ConsumerHandle:
        consumer = self._consumer(_QuietConsumer, workers)
        consumer.start()
        return _EmbeddedConsumer(consumer)

    def run_consumer(self, workers: int) -> None:
        consumer = self._consumer(_Consumer, workers)
        consumer.run()
        # The workers see the stop between tasks, and one waiting in a blocking dequeue (Redis) within its timeout:
        # wait for them, so the caller does not close the connections they are reading from.
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for _, thread in consumer.worker_threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def check(self) -> str:
        return f"{self.description} ({self.pending()} pending)"
