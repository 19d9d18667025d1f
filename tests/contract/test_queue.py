"""The Queue seam: named tasks, bounded retries, embedded consumers, and worker nodes."""

from __future__ import annotations

import logging
import threading
import time

import pytest

# Task bodies are module-level: Huey finds a task by its function's module and the given name,
# so a second node must register the same function under the same name.
RAN: list[tuple] = []
ATTEMPTS: list[int] = []
LOCK = threading.Lock()


def record(*args):
    with LOCK:
        RAN.append(args)


def always_fails(n):
    with LOCK:
        ATTEMPTS.append(n)
    raise RuntimeError("this task always fails")


def fails_once(n):
    with LOCK:
        ATTEMPTS.append(n)
        first = ATTEMPTS.count(n) == 1
    if first:
        raise RuntimeError("first attempt fails")
    record("recovered", n)


@pytest.fixture(autouse=True)
def clean_records():
    RAN.clear()
    ATTEMPTS.clear()
    yield
    RAN.clear()
    ATTEMPTS.clear()


def _wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not done within {timeout}s"
        time.sleep(0.02)


def test_enqueued_tasks_run_with_their_arguments(queue):
    queue.register("record", record, retries=0)
    queue.enqueue("record", 1, "two", {"three": 3})
    queue.enqueue("record", 4)
    assert queue.pending() == 2
    assert RAN == [], "enqueue must not run the task itself"
    assert queue.run_pending() == 2
    assert sorted(RAN, key=len) == [(4,), (1, "two", {"three": 3})]
    assert queue.pending() == 0
    assert queue.run_pending() == 0


def test_run_pending_stops_at_its_limit(queue):
    queue.register("record", record, retries=0)
    for n in range(5):
        queue.enqueue("record", n)
    assert queue.run_pending(limit=2) == 2
    assert queue.pending() == 3
    assert queue.run_pending() == 3
    assert sorted(RAN) == [(n,) for n in range(5)]


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_a_failing_task_is_retried_at_most_retries_times(queue, retries):
    queue.register("always_fails", always_fails, retries=retries, retry_delay=0)
    queue.enqueue("always_fails", 7)
    queue.run_pending()
    assert ATTEMPTS == [7] * (1 + retries)
    assert queue.pending() == 0
    assert queue.run_pending() == 0
    assert ATTEMPTS == [7] * (1 + retries)


def test_a_retried_task_can_succeed(queue):
    queue.register("fails_once", fails_once, retries=2, retry_delay=0)
    queue.enqueue("fails_once", 3)
    queue.run_pending()
    assert ATTEMPTS == [3, 3]
    assert RAN == [("recovered", 3)]
    assert queue.pending() == 0


def test_a_delayed_task_waits_for_its_time(queue):
    queue.register("record", record, retries=0)
    queue.enqueue("record", "later", delay=60)
    queue.run_pending()
    assert RAN == []


def test_an_embedded_consumer_runs_tasks_and_stops(queue):
    queue.register("record", record, retries=0)
    consumer = queue.start_consumer(2)
    try:
        _wait_until(consumer.alive, 5)
        for n in range(10):
            queue.enqueue("record", n)
        _wait_until(lambda: len(RAN) == 10, 5)
    finally:
        stopped = threading.Thread(target=consumer.stop)
        stopped.start()
        stopped.join(5)
    assert not stopped.is_alive(), "stop() did not return within 5 s"
    assert sorted(RAN) == [(n,) for n in range(10)]
    assert not consumer.alive()
    assert queue.pending() == 0


def test_tasks_enqueued_on_one_node_run_on_another(queue, build, queue_name):
    # The web node enqueues; a worker node built from the same config runs the task.
    queue.register("record", record, retries=0)
    queue.enqueue("record", "from the web node")
    worker = build("queue", queue_name).queue
    worker.register("record", record, retries=0)
    assert worker.pending() == 1
    assert worker.run_pending() == 1
    assert RAN == [("from the web node",)]
    assert queue.pending() == 0

    consumer = worker.start_consumer(1)
    try:
        queue.enqueue("record", "picked up live")
        _wait_until(lambda: len(RAN) == 2, 5)
    finally:
        consumer.stop()
    assert RAN[-1] == ("picked up live",)


def test_check_reports_the_queue(queue):
    queue.register("record", record, retries=0)
    queue.enqueue("record", 1)
    assert isinstance(queue.check(), str) and queue.check()


def tick():
    record("tick")


def test_a_periodic_task_runs_once_a_minute_across_consumers(queue, build, queue_name, caplog):
    # Two nodes consume the same queue; each consumer's scheduler checks the periodic tasks as it starts.
    caplog.set_level(logging.DEBUG, logger="pinhole.queue")
    nodes = [queue, build("queue", queue_name).queue]
    for node in nodes:
        node.register_periodic("tick", tick)
    if time.time() % 60 > 57:  # both schedulers must check within one minute
        time.sleep(60 - time.time() % 60 + 0.1)
    consumers = [node.start_consumer(1) for node in nodes]
    try:
        _wait_until(lambda: RAN and "another consumer enqueued this minute's run" in caplog.text, 5)
        _wait_until(lambda: queue.pending() == 0, 5)
    finally:
        for consumer in consumers:
            consumer.stop()
    assert RAN == [("tick",)], "each consumer ran this minute's sweep"


def test_a_minute_is_claimed_once_per_task(queue, build, queue_name):
    # The claim under the periodic tasks (every backend here is a HueyQueue): first caller of any node wins.
    other = build("queue", queue_name).queue
    minute = int(time.time() // 60)
    assert queue.claim_minute("tick", minute)
    assert not queue.claim_minute("tick", minute)
    assert not other.claim_minute("tick", minute)
    assert other.claim_minute("tock", minute), "another task's claim is its own"
    assert other.claim_minute("tick", minute + 1), "the next minute is free again"
