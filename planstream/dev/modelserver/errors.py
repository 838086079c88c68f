"""Errors answered in OpenAI's shape: ``{"error": {message, type, param, code}}``."""

from collections.abc import Mapping

from planstream.domain.errors import PlanstreamError

__all__ = ["ApiError", "bad_request"]


class ApiError(PlanstreamError):
    """An HTTP error answer; ``message`` is what the client reads, so it never holds a URL."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        """The JSON body OpenAI sends with an error."""
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return {"error": error}


def bad_request(message: str, *, code: str | None = None, param: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``: the request cannot be answered as it stands."""
    return ApiError(400, message, code=code, param=param)
