"""Short-lived signed GET URLs for artifacts, cached on the artifact row and re-minted near expiry.

A signed URL is a bearer credential: it is stored, handed to the model, and never logged,
returned by the API or put in an event. A cached URL is reused only if the store says it signed
it, unaltered, for this very object, and both its own expiry and the row's are beyond the
margin: a URL signed by a rotated key, minted for another object, with a flipped byte, or whose
row outlives it (a clock or TTL mismatch) is minted again, never handed to the model (T25).

The calls of one step ask for the URL before every try (``CallUrl``): a retry window (429s,
timeouts, backoff) can outlast the margin, and a URL that expired between two tries would make
the model's download fail and the step with it.
"""

from datetime import datetime, timedelta

from planstream.domain.records import Artifact
from planstream.ports import ArtifactStore, Clock, Repository
from planstream.settings import Settings

__all__ = ["CallUrl", "SignedUrls"]


class SignedUrls:
    """Hands out a signed URL for an artifact that stays valid for at least the refresh margin."""

    def __init__(
        self,
        repo: Repository,
        storage: ArtifactStore,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._storage = storage
        self._ttl = timedelta(seconds=settings.signed_url_ttl_s)
        self._margin = timedelta(seconds=settings.signed_url_refresh_margin_s)
        self._clock = clock

    async def for_artifact(self, artifact: Artifact) -> str:
        """The cached URL if it is intact and outlives the margin, else a fresh one (cached)."""
        url, _ = await self.resolve(artifact)
        return url

    def for_calls(self, artifact: Artifact) -> "CallUrl":
        """The URL source of one step's model calls on ``artifact``: call it before each try."""
        return CallUrl(self, artifact)

    async def resolve(self, artifact: Artifact) -> tuple[str, datetime]:
        """The URL ``for_artifact`` hands out, and until when it works."""
        cached, expires = artifact.signed_url_cached, artifact.signed_url_expires_at
        if cached and expires is not None and self.usable(expires):
            own = self._storage.signed_until(cached, artifact.storage_bucket, artifact.storage_path)
            if own is not None and self.usable(own):
                return cached, min(own, expires)
        return await self.mint(artifact)

    async def mint(self, artifact: Artifact) -> tuple[str, datetime]:
        """A new URL for ``artifact``, cached on its row; and until when it works."""
        now = self._clock()
        url = await self._storage.presign_get(
            artifact.storage_bucket, artifact.storage_path, int(self._ttl.total_seconds())
        )
        await self._repo.cache_signed_url(artifact.artifact_id, url, now + self._ttl)
        return url, now + self._ttl

    def usable(self, until: datetime) -> bool:
        """Whether a URL that works until ``until`` still outlives the refresh margin."""
        return until - self._margin > self._clock()


class CallUrl:
    """The signed URL of one artifact across the tries of one step's model calls: the same URL
    while it outlives the margin, a new one as soon as it does not."""

    def __init__(self, urls: SignedUrls, artifact: Artifact) -> None:
        self._urls = urls
        self._artifact = artifact
        self._held: tuple[str, datetime] | None = None

    async def __call__(self) -> str:
        held = self._held
        if held is None:
            held = await self._urls.resolve(self._artifact)
        elif not self._urls.usable(held[1]):
            held = await self._urls.mint(self._artifact)
        self._held = held
        return held[0]
