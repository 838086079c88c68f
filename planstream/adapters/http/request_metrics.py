"""The ingress's request metrics: an aiohttp middleware counting every answer by route template.

The outermost middleware, so it sees the status the client gets (after the error middleware
turned an exception into one). The route label is the template (``/v1/runs/{run_id}``), never
the path: a path holds a run id. A request no route matched is ``unmatched``.
"""

import asyncio
import time
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from planstream.services import metrics

__all__ = ["UNMATCHED", "request_metrics", "route_of"]

UNMATCHED: Final = "unmatched"
_CLIENT_GONE: Final = 499  # the client closed the connection before the answer (nginx's code)


def route_of(request: web.Request) -> str:
    """The template of the route that matched ``request``, or ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request and its latency once it is answered (or fails)."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = _CLIENT_GONE
        raise
    finally:
        metrics.count_http_request(route_of(request), status, time.monotonic() - started)
