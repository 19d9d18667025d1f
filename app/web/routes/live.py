"""Live updates: one server-sent-events stream per open page of a signed-in viewer.

GET /events   text/event-stream of the viewer's channel on the live-events seam (notifications.channel):
              `event: notifications` {"type": "notifications", "unread": n} (sent once on connecting, so a page
              that reconnects catches up, then on every change) and `event: new_post` {"type": "new_post", ...}
              (from the feed's fan-out). A comment line every HEARTBEAT_S keeps proxies from closing a quiet
              stream. Without a session: 401.

Subscription.get blocks, so it runs in a worker thread, POLL_S at a time, from a limiter of its own: open streams
never take the threads the sync handlers run in. Between waits the loop checks whether the client left (Litestar
cancels the stream) or the server is stopping (its stop signal, or the shutdown hook below), so neither waits on
an open stream for more than POLL_S. A stream also ends after MAX_STREAM_S; the browser reconnects on its own, and
the session is checked again.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from litestar import Litestar, Request, Response, Router, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.context import Context
from app.services import notifications
from app.services.accounts import User
from app.web.deps import CtxDep, ViewerDep

log = logging.getLogger("pinhole.live")

POLL_S = 1.0
HEARTBEAT_S = 15.0
MAX_STREAM_S = 30 * 60.0
RETRY_MS = 3_000  # how soon the browser reconnects after a stream ends
MAX_STREAMS = 2_000  # open streams per process, each a thread mostly asleep in Subscription.get


def open_streams(app: Litestar) -> None:
    """Startup hook (in the event loop, where a limiter belongs): the streams' threads and the stop flag."""
    app.state["live_limiter"] = anyio.CapacityLimiter(MAX_STREAMS)
    closing = app.state["live_closing"] = threading.Event()
    _close_on_stop_signals(closing)


def _close_on_stop_signals(closing: threading.Event) -> None:
    """Granian lets a worker's open requests finish before it stops, and runs the app's shutdown hooks only after:
    an open stream would hold the server up forever. So the signal that stops the worker also raises the flag.
    The handler chains to the one already there (Granian's, reached through the event loop's wakeup fd, which the
    C-level handler writes whatever Python handler is set). Only the main thread may set handlers: in a test
    client's thread the shutdown hook alone ends the streams."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous = signal.getsignal(sig)
            if previous in (signal.SIG_IGN, None):
                continue

            def handler(signum: int, frame: object, previous: object = previous) -> None:
                closing.set()
                if callable(previous):
                    previous(signum, frame)
                else:  # the default action: end the process, as it would have
                    signal.signal(signum, signal.SIG_DFL)
                    os.kill(os.getpid(), signum)

            signal.signal(sig, handler)
        except ValueError:
            return


def close_streams(app: Litestar) -> None:
    """Shutdown hook: every open stream ends within POLL_S, so the server's shutdown never waits on one."""
    app.state["live_closing"].set()


def _message(payload: dict) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        event=str(payload.get("type", "message")), data=json.dumps(payload, separators=(",", ":"))
    )


async def _stream(ctx: Context, viewer: User, app: Litestar) -> AsyncIterator[ServerSentEventMessage]:
    closing: threading.Event = app.state["live_closing"]
    limiter: anyio.CapacityLimiter = app.state["live_limiter"]
    # Off the event loop: on Redis, subscribing waits for the server's confirmation.
    subscription = await anyio.to_thread.run_sync(ctx.backends.events.subscribe, [notifications.channel(viewer.id)])
    try:
        unread = await anyio.to_thread.run_sync(notifications.unread_count, ctx, viewer.id)
        first = _message({"type": "notifications", "unread": unread})
        first.retry = RETRY_MS
        yield first
        started = last_sent = time.monotonic()
        while not closing.is_set() and time.monotonic() - started < MAX_STREAM_S:
            item = await anyio.to_thread.run_sync(subscription.get, POLL_S, abandon_on_cancel=True, limiter=limiter)
            if item is not None:
                _channel, payload = item
                if isinstance(payload, dict):
                    yield _message(payload)
                    last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= HEARTBEAT_S:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
                last_sent = time.monotonic()
    finally:
        subscription.close()


@get("/events")
async def events(request: Request, ctx: CtxDep, viewer: ViewerDep) -> ServerSentEvent | Response:
    if viewer is None:
        return Response("Sign in to receive live updates.\n", status_code=401, media_type="text/plain")
    return ServerSentEvent(_stream(ctx, viewer, request.app), headers={"cache-control": "no-store"})


router = Router(path="", route_handlers=[events])
