"""The ingress application's shared resources, by key: what the API's handlers and the console
read from the application (``request.config_dict``), opened on startup and closed on cleanup."""

import asyncpg
from aiohttp import web

from planstream.adapters.http.auth import TokenVerifier
from planstream.adapters.kafka import EventPublisher
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.storage import Storage
from planstream.services.routing import Routing
from planstream.settings import Settings

__all__ = ["POOL", "PUBLISHER", "REPO", "ROUTING", "SETTINGS", "STORAGE", "VERIFIER"]

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
REPO = web.AppKey("repo", Repository)
STORAGE = web.AppKey("storage", Storage)
PUBLISHER = web.AppKey("publisher", EventPublisher)
ROUTING = web.AppKey("routing", Routing)
VERIFIER = web.AppKey("verifier", TokenVerifier)
