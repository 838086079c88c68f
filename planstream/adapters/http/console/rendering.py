"""The console's pages: Jinja2 templates (package data, autoescaped, strict about missing names)
rendered to HTML answers, the formats they show figures in, and the message page of a refusal."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jinja2
from aiohttp import web

__all__ = ["STATIC_DIR", "age", "environment", "page", "refusal", "see_other", "usd"]

_HERE: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = _HERE / "static"
_ENVIRONMENT: Final = web.AppKey("console_templates", jinja2.Environment)


def age(then: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``then`` was, in the two largest units (``3 h 12 min``, ``45 s``)."""
    if then is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{value} {unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0 s"


def usd(value: float | int | None) -> str:
    """A cost in dollars, to the cent's hundredth."""
    return f"${float(value or 0):.4f}"


def when(value: datetime | None) -> str:
    """A moment in UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> jinja2.Environment:
    """The templates beside this module, every value escaped for HTML."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(age=age, usd=usd, when=when)
    return env


def install(app: web.Application) -> None:
    """Give ``app`` its template environment (read by :func:`page`)."""
    app[_ENVIRONMENT] = environment()


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """``template`` rendered with ``context`` (``session`` is None unless given)."""
    env = request.config_dict[_ENVIRONMENT]
    context.setdefault("session", None)
    context.setdefault("here", "")
    html = env.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def refusal(
    request: web.Request,
    status: int,
    title: str,
    text: str,
    *,
    back: str | None = None,
    session: Any = None,
) -> web.Response:
    """A page saying why the request was refused, with the status it is answered with."""
    return page(
        request,
        "message.html",
        status,
        title=title,
        text=text,
        back=back,
        session=session,
        code=status,
    )


def see_other(location: str) -> web.Response:
    """A 303 to a console path (after a form, or to sign-in)."""
    return web.Response(status=303, headers={"Location": location})
