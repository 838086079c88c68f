"""Short-lived signed GET URLs for artifacts, cached on the artifact row and re-minted near expiry.

A signed URL is a bearer credential: it is stored, handed to the model, and never logged,
returned by the API or put in an event.
"""

from datetime import timedelta

from planstream.domain.records import Artifact
from planstream.ports import ArtifactStore, Clock, Repository
from planstream.settings import Settings

__all__ = ["SignedUrls"]


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
        """The cached URL if it outlives the margin, else a fresh one (cached in turn)."""
        now = self._clock()
        cached, expires = artifact.signed_url_cached, artifact.signed_url_expires_at
        if cached and expires is not None and expires - self._margin > now:
            return cached
        url = await self._storage.presign_get(
            artifact.storage_bucket, artifact.storage_path, int(self._ttl.total_seconds())
        )
        await self._repo.cache_signed_url(artifact.artifact_id, url, now + self._ttl)
        return url
