"""The I/O floor's raw clients, each external operation counted as it is made.

asyncpg, aiobotocore, httpx2 and aiokafka, configured as planstream configures its own (the
pool's size and no reset on release, the S3 client's signature, addressing and timeouts, the
model client's connection limits and timeout, the producer's acks and linger) and nothing
else: no validation, no retries, no records beyond the statements themselves. Every call
counts one operation of its kind (``planstream.dev.bench.floor_counts.KINDS``).
"""

import asyncio
import json
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any, Final

import asyncpg
import httpx2
from aiobotocore.session import get_session
from aiokafka import AIOKafkaProducer

from planstream.adapters.storage import client_config
from planstream.dev.bench.floor_statements import BUDGET, CALL_ENDED, CALL_STARTED, RESERVE, SETTLE
from planstream.domain.ids import new_id
from planstream.settings import Settings

__all__ = ["CountedClients"]

_JSON: Final = {"Content-Type": "application/json"}
# openai's DefaultAsyncHttpxClient: its connection limits, which planstream's model client uses.
_HTTP_LIMITS: Final = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


async def _keep(conn: asyncpg.Connection) -> None:
    """No reset query on release, as planstream's pools (``create_pool``)."""


class CountedClients:
    """One process's clients; ``ops`` counts what was asked of each service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ops: Counter[str] = Counter()
        self._stack = AsyncExitStack()
        self._marks: set[asyncio.Future[Any]] = set()
        self.pool: asyncpg.Pool
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            linger_ms=settings.producer_linger_ms,
        )
        self._chat_url = settings.model_base_url.rstrip("/") + "/chat/completions"
        self._s3: Any = None
        self._http: httpx2.AsyncClient

    async def open(self) -> None:
        s = self.settings
        self.pool = await asyncpg.create_pool(
            s.dsn, min_size=s.db_pool_min, max_size=s.db_pool_max, reset=_keep
        )
        self._stack.push_async_callback(self.pool.close)
        self._s3 = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=s.s3_endpoint,
                region_name=s.s3_region,
                aws_access_key_id=s.s3_access_key_id,
                aws_secret_access_key=s.s3_secret_access_key,
                config=client_config(s),
            )
        )
        headers = {"Authorization": f"Bearer {s.model_api_key}"}
        self._http = httpx2.AsyncClient(
            headers=headers, timeout=s.model_timeout_s, limits=_HTTP_LIMITS
        )
        self._stack.push_async_callback(self._http.aclose)
        await self.producer.start()
        self._stack.push_async_callback(self.producer.stop)

    async def close(self) -> None:
        await asyncio.gather(*self._marks, return_exceptions=True)
        await self._stack.aclose()

    async def execute(self, sql: str, *args: object) -> None:
        self.ops["postgres"] += 1
        await self.pool.execute(sql, *args)

    async def fetchrow(self, sql: str, *args: object) -> asyncpg.Record:
        self.ops["postgres"] += 1
        row = await self.pool.fetchrow(sql, *args)
        if row is None:
            raise LookupError(f"no row for {sql.split()[0]} {args[:1]}")
        return row

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        self.ops["postgres"] += 1
        return list(await self.pool.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: object) -> Any:
        self.ops["postgres"] += 1
        return await self.pool.fetchval(sql, *args)

    async def get(self, bucket: str, key: str) -> bytes:
        """One GET of a whole object."""
        self.ops["s3_get"] += 1
        response = await self._s3.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.ops["s3_put"] += 1
        await self._s3.put_object(
            Bucket=self.settings.s3_bucket, Key=key, Body=data, ContentType=content_type
        )

    async def presign(self, key: str) -> str:
        """A signed GET URL, made locally (no request): the model fetches the image with it."""
        url: str = await self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.settings.s3_bucket, "Key": key},
            ExpiresIn=self.settings.signed_url_ttl_s,
        )
        return url

    async def produce(self, topic: str, value: bytes, key: str) -> None:
        """One event, the broker's acknowledgement awaited (as TopicPublisher does)."""
        self.ops["kafka_produce"] += 1
        await self.producer.send_and_wait(topic, value, key=key.encode())

    async def mark(self, topic: str, key: str) -> None:
        """The dedup mark: one record on a changelog, queued, its acknowledgement not awaited
        (as a Faust table's write)."""
        self.ops["kafka_produce"] += 1
        value = json.dumps(time.time()).encode()
        sent = await self.producer.send(topic, value, key=key.encode())
        self._marks.add(sent)
        sent.add_done_callback(self._marks.discard)

    async def chat(
        self, run_id: str, purpose: str, model: str, request: dict[str, Any]
    ) -> tuple[str, bytes]:
        """One model call within its budget, recorded before and after (five statements around
        one chat completion); the answer's content and the raw body."""
        tokens = self.settings.model_max_output_tokens
        await self.fetchval(BUDGET, run_id, purpose)
        await self.fetchval(RESERVE, model, tokens)
        call_id = new_id("evt")
        await self.execute(CALL_STARTED, call_id, run_id, purpose, model)
        started = time.monotonic()
        body = json.dumps({"model": model, **request}).encode()
        self.ops["model"] += 1
        response = await self._http.post(self._chat_url, content=body, headers=_JSON)
        response.raise_for_status()
        raw = response.content
        answer = json.loads(raw)
        content = str(answer["choices"][0]["message"]["content"])
        usage = answer["usage"]
        await self.execute(SETTLE, model, tokens - int(usage["total_tokens"]))
        latency_ms = int((time.monotonic() - started) * 1000)
        await self.execute(
            CALL_ENDED,
            call_id,
            run_id,
            purpose,
            model,
            usage["prompt_tokens"],
            usage["completion_tokens"],
            content,
            latency_ms,
        )
        return content, raw
