"""The exception tree: every error planstream raises on purpose is one of these."""

__all__ = [
    "ConfigurationError",
    "Conflict",
    "EventRejected",
    "PermanentError",
    "PlanstreamError",
    "QuotaExceeded",
    "RecordMissing",
    "RetryableError",
]


class PlanstreamError(Exception):
    """Base of every error planstream raises on purpose."""


class RetryableError(PlanstreamError):
    """A transient failure of I/O (timeout, throttling, a 5xx): the same call may succeed later."""


class PermanentError(PlanstreamError):
    """Bad input or a broken invariant: repeating the call cannot help, so it is dead-lettered."""


class RecordMissing(PermanentError):
    """A record the work needs (a run, a step, an artifact, a job's kept event) is not there."""


class EventRejected(PermanentError):
    """An event broke the wire contract (size, shape, smuggled data) and was refused."""


class Conflict(PermanentError):
    """The request is well formed but the state of what it names refuses it (answered 409)."""


class QuotaExceeded(PlanstreamError):
    """A caller used up one of its quotas; it may try again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigurationError(PlanstreamError):
    """A setting is missing or malformed."""
