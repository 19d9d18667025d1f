"""Per-request metrics and one structured log line per request."""

from __future__ import annotations

import logging
import secrets
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

log = logging.getLogger("pinhole.http")


def observe_requests(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status, started = 500, False
        request_id = secrets.token_hex(6)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_observed(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await app(scope, receive, send_observed)
        except Exception as exc:
            # Raised outside the handler (a CSRF refusal, a body over the limit): the app's exception
            # handler answers it after we return, with the exception's status, not a 500.
            if not started:
                status = getattr(exc, "status_code", None) or getattr(exc, "status", None) or 500
            raise
        finally:
            route = scope.get("path_template") or "unmatched"
            elapsed = time.perf_counter() - start
            metrics.REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.LATENCY.labels(route).observe(elapsed)
            if route not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 1),
                    },
                )

    return middleware
