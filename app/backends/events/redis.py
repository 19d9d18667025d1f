"""Rung 2+: live events over Redis pub/sub, so a page open on one app node hears what a worker or another node
publishes.

Each process keeps one pub/sub connection, subscribed to the channels its open pages listen to (counted, so a
channel is unsubscribed when its last listener leaves), and one listener thread that hands each message to the
local subscribers through the same bounded in-process inboxes as the rung-0 backend: a slow page drops messages
instead of growing, and a thousand open pages cost one connection, not a thousand. subscribe() returns once Redis
has confirmed the subscription, so whatever is published after it returns arrives.

publish_many (a new post announced to every follower) sends one message for a batch of channels on the channel
`*many`, which every process with a listener subscribes to; each hands it to its own subscribers of those channels.
A PUBLISH per follower cost Redis and the publisher about 2 µs each, almost all for channels nobody listens to.

Pub/sub is server-wide in Redis (not per database), so channel names carry the database number of the URL: two
sites on one server with different databases never hear each other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from app.backends.events.base import Events, Subscription
from app.backends.events.local import LocalEvents
from app.backends.redis_server import RedisServer

log = logging.getLogger("pinhole.events")

MANY = "*many"  # publish_many's channel (user channels are "user:<id>"); every listening process subscribes to it
PUBLISH_BATCH = 1000  # channels a publish_many message names: bounds the work of each listener for one message
LISTEN_SECONDS = 0.25  # the listener's longest wait for a message: how long close() may take
RECONNECT_SECONDS = 1.0  # between attempts to get the pub/sub connection back after it broke


class RedisSubscription(Subscription):
    def __init__(self, owner: RedisEvents, inbox: Subscription, channels: list[str]):
        self.owner = owner
        self.inbox = inbox
        self.channels = channels
        self.closed = False  # guarded by the owner's lock

    def get(self, timeout: float) -> tuple[str, Any] | None:
        return self.inbox.get(timeout)

    def close(self) -> None:
        self.owner._close(self)


class RedisEvents(Events):
    def __init__(self, server: RedisServer):
        self.server = server
        self.prefix = f"pinhole:{server.db}:"
        self._local = LocalEvents()  # this process's subscribers and their inboxes
        self._cond = threading.Condition()  # guards everything below, and is notified when Redis answers
        self._pubsub = server.redis.pubsub()
        self._wanted: Counter[str] = Counter()  # channel -> open subscriptions in this process
        self._asked: set[str] = set()  # channels whose last command sent was SUBSCRIBE
        self._unanswered: Counter[str] = Counter()  # SUBSCRIBE/UNSUBSCRIBE sent, confirmation not read yet
        self._broken = ""  # why the pub/sub connection is down, while the listener gets it back
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def publish(self, channel: str, message: Any) -> None:
        data = json.dumps(message)
        with self.server.client() as r:
            r.publish(self.prefix + channel, data)

    def publish_many(self, channels: Iterable[str], message: Any) -> None:
        channels = list(channels)
        for start in range(0, len(channels), PUBLISH_BATCH):
            data = json.dumps({"channels": channels[start : start + PUBLISH_BATCH], "message": message})
            with self.server.client() as r:
                r.publish(self.prefix + MANY, data)

    def subscribe(self, channels: list[str]) -> Subscription:
        channels = list(dict.fromkeys(channels))
        deadline = time.monotonic() + self.server.timeout
        with self._cond:
            if self._broken:
                raise self.server.unavailable(self._broken)
            self._wanted.update(channels)
            self._wanted[MANY] = 1  # from the first subscription on, for the life of the process
            confirmed = [MANY, *channels]
            try:
                self._send_subscribe([c for c in confirmed if c not in self._asked])
                self._start_listener()
                while not all(c in self._asked and not self._unanswered[c] for c in confirmed):
                    if self._broken:
                        raise self.server.unavailable(self._broken)
                    if not self._cond.wait(deadline - time.monotonic()):
                        raise self.server.unavailable(f"no answer to SUBSCRIBE within {self.server.timeout} s")
            except BaseException:
                self._release_locked(channels)
                raise
        return RedisSubscription(self, self._local.subscribe(channels), channels)

    def check(self) -> str:
        with self._cond:
            broken, listened = self._broken, len(self._wanted) - (MANY in self._wanted)
        if broken:
            raise self.server.unavailable(f"pub/sub connection lost: {broken}")
        return f"{self.server.check()}: pub/sub ({listened} channels with listeners in this process)"

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            pubsub, listener = self._pubsub, self._listener
        pubsub.close()  # wakes the listener from a read; from an idle wait it sees the stop within LISTEN_SECONDS
        if listener is not None:
            listener.join(LISTEN_SECONDS + 1)

    # --- the subscriptions this process holds (called with self._cond held) -----------------------------------

    def _send_subscribe(self, channels: list[str]) -> None:
        if channels:
            with self.server.client():
                self._pubsub.subscribe(*[self.prefix + c for c in channels])
            self._asked.update(channels)
            self._unanswered.update(channels)

    def _close(self, sub: RedisSubscription) -> None:
        with self._cond:
            if sub.closed:
                return
            sub.closed = True
            sub.inbox.close()
            self._release_locked(sub.channels)

    def _release_locked(self, channels: list[str]) -> None:
        self._wanted.subtract(channels)
        gone = [c for c in channels if self._wanted[c] <= 0 and c in self._asked]
        for channel in channels:
            if self._wanted[channel] <= 0:
                del self._wanted[channel]
        if not gone:
            return
        self._asked.difference_update(gone)
        try:
            with self.server.client():
                self._pubsub.unsubscribe(*[self.prefix + c for c in gone])
        except Exception:  # still subscribed in Redis: its messages find no listener here, and a reconnect drops it
            log.warning("could not unsubscribe from %s", gone, exc_info=True)
            return
        self._unanswered.update(gone)

    # --- the listener thread -----------------------------------------------------------------------------------

    def _start_listener(self) -> None:
        if self._listener is None:
            self._listener = threading.Thread(target=self._listen, name="pinhole-redis-events", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                pubsub = self._pubsub
            try:
                message = pubsub.get_message(timeout=LISTEN_SECONDS)
            except Exception as exc:  # the connection broke (or close() closed it)
                if not self._stop.is_set():
                    self._reconnect(str(exc) or type(exc).__name__)
                continue
            if message is not None:
                self._receive(message)

    def _receive(self, message: dict) -> None:
        channel = message["channel"].decode()[len(self.prefix) :]
        if message["type"] == "message":
            try:
                payload = json.loads(message["data"])
            except ValueError:
                log.warning("ignored a message on %s that is not JSON", channel)
                return
            if channel != MANY:
                self._local.publish(channel, payload)
            elif isinstance(payload, dict) and isinstance(payload.get("channels"), list):
                self._local.publish_many(payload["channels"], payload.get("message"))
            else:
                log.warning("ignored a message on %s that names no channels", channel)
        elif message["type"] in ("subscribe", "unsubscribe"):
            with self._cond:
                if self._unanswered[channel] > 0:
                    self._unanswered[channel] -= 1
                self._cond.notify_all()

    def _reconnect(self, reason: str) -> None:
        """A new pub/sub connection subscribed to every channel still wanted; until then subscribe() fails."""
        log.warning("redis pub/sub connection to %s lost: %s", self.server.label, reason)
        with self._cond:
            old, self._pubsub = self._pubsub, self.server.redis.pubsub()
            self._asked.clear()
            self._unanswered.clear()
            self._broken = reason
            self._cond.notify_all()
        try:
            old.close()
        except Exception:
            pass  # it is broken already
        while not self._stop.wait(RECONNECT_SECONDS):
            with self._cond:
                try:
                    self._send_subscribe(list(self._wanted))
                except Exception as exc:
                    self._broken = str(exc)
                    continue
                self._broken = ""
            log.info("redis pub/sub connection to %s is back", self.server.label)
            return
