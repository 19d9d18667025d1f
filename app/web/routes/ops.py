"""Operator endpoints: liveness, readiness per backend, Prometheus metrics, the favicon, a trivial hello page."""

from __future__ import annotations

from pathlib import Path

from litestar import Request, get
from litestar.response import File, Response

from app import metrics
from app.context import Context
from app.errors import NotFound
from app.web.deps import CtxDep, ip_of

STATIC = Path(__file__).resolve().parents[3] / "static"
OPTIONAL_BACKENDS = {"cache"}  # pages are read from the database while it is down


@get("/healthz", sync_to_thread=False)
def healthz() -> Response:
    return Response("ok\n", media_type="text/plain")


@get("/hello", sync_to_thread=False)
def hello() -> Response:
    """The cheapest page: what the stack costs with no app work, the baseline the feed benchmark compares to."""
    return Response("Hello from Pinhole\n", media_type="text/plain")


def _operator(request: Request, ctx: Context) -> bool:
    return ip_of(request) in ctx.config.server.ops_clients


@get("/readyz", sync_to_thread=True)
def readyz(request: Request, ctx: CtxDep) -> Response:
    """Ready or not for anyone (load balancers); what each backend said only for operators."""
    checks = ctx.backends.checks()
    consumer = getattr(ctx, "consumer", None)
    if ctx.config.queue.embedded_workers > 0 and consumer is not None:
        checks["embedded_workers"] = (consumer.alive(), f"{ctx.config.queue.embedded_workers} threads")
    # Without its cache a node is slower, not broken: it stays in the load balancer ("degraded").
    ready = all(ok for name, (ok, _) in checks.items() if name not in OPTIONAL_BACKENDS)
    status = "unavailable" if not ready else "ready" if all(ok for ok, _ in checks.values()) else "degraded"
    operator = _operator(request, ctx)
    body = {
        "status": status,
        "backends": {
            name: {"ok": ok, **({"detail": detail} if operator else {})} for name, (ok, detail) in checks.items()
        },
    }
    return Response(body, status_code=200 if ready else 503, headers={"cache-control": "no-store"})


@get("/metrics", sync_to_thread=True)
def prometheus(request: Request, ctx: CtxDep) -> Response:
    if not _operator(request, ctx):
        raise NotFound("There is nothing at this address.")
    try:
        metrics.QUEUE_DEPTH.set(ctx.backends.queue.pending())
    except Exception:
        pass  # the queue's own health shows in /readyz; metrics must still answer
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)


@get("/favicon.ico", sync_to_thread=False, cache=False)
def favicon() -> File:
    return File(
        STATIC / "favicon.ico",
        media_type="image/vnd.microsoft.icon",
        content_disposition_type="inline",
        headers={"cache-control": "public, max-age=604800"},
    )
