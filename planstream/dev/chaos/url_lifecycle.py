"""T25's checkers: a signed URL that expired, was altered or names another object never reaches
the model, and a URL that expires inside a retry window is minted again, never a failed step.

The inputs are what the test collected (the S3 gate's answers, the model front's calls with the
digest of each image URL, the runs' rows), so each checker is tested on a broken history
without the stack (``tests/dev/test_chaos_url_lifecycle.py``):

- ``control_void``: the S3 path of the environment must refuse an expired, an altered and a
  re-pointed presigned URL with 403 and serve a fresh one, or every other figure of T25 is void
  (moto alone serves them all: the harness's S3 gate is what refuses them);
- ``stale_urls_given``: calls that carried a planted bad URL (expired, altered, for another
  object: any call at all; the honest URL of the retry-window case: a call passed to the model
  after it expired);
- ``window_missed``: the retry-window case did not happen as staged (the planted URL was never
  held back while valid, or no fresh URL followed): the test proves nothing, so it fails;
- ``url_steps_failed``: a run of the test whose step 0 did not proceed at its first attempt, or
  that had a model call refused (the model could not download its image). Later steps are not
  held to completing: a render may time out under load, which is not a URL's doing.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from planstream.dev.chaos.checkers import Check
from planstream.dev.chaos.modelfaults import ModelCallSeen

__all__ = [
    "CONTROL_EXPECTED",
    "Planted",
    "UrlRun",
    "control_void",
    "stale_urls_given",
    "url_steps_failed",
    "window_missed",
]

CONTROL_EXPECTED: Final = {"fresh": 200, "expired": 403, "tampered": 403, "other_key": 403}
_EVIDENCE = 10
Case = Literal["expired", "tampered", "other_key", "window"]


@dataclass(frozen=True)
class Planted:
    """A URL the test put in an artifact's cache: which case, for which run and image."""

    case: Case
    run_id: str
    image_key: str  # the object path the model front records (/bucket/key)
    digest: str  # modelfaults.url_digest of the URL
    expires_at: float  # when the URL itself stops working (epoch seconds)


@dataclass(frozen=True)
class UrlRun:
    """How step 0 of one run of the test went."""

    run_id: str
    step0_first_decision: str | None  # the Supervisor's decision on attempt 1 of step 0
    step0_attempts: int
    refused_calls: int  # model calls of the run refused (any step)


def control_void(statuses: Mapping[str, int]) -> Check:
    """T25's control: each case's HTTP status through the environment's S3, against S3's."""
    found = [
        f"{case}: {statuses.get(case)} (S3 answers {expected})"
        for case, expected in CONTROL_EXPECTED.items()
        if statuses.get(case) != expected
    ]
    return Check("T25", "control_void", len(found), tuple(found))


def stale_urls_given(calls: Iterable[ModelCallSeen], planted: Iterable[Planted]) -> Check:
    """T25: model calls that carried a planted URL they should never have carried."""
    seen = list(calls)
    found = []
    for url in planted:
        for call in seen:
            if call.url_digest != url.digest:
                continue
            if url.case != "window" or (call.fault == "pass" and call.at >= url.expires_at):
                found.append(f"{url.case} URL of {url.run_id} sent to the model ({call.fault})")
    return Check("T25", "stale_urls_given", len(found), tuple(found[:_EVIDENCE]))


def window_missed(calls: Iterable[ModelCallSeen], window: Planted) -> Check:
    """T25: 1 when the retry window was not staged: the planted URL never held back while
    valid, or no call with another URL for the same image passed after it."""
    seen = [c for c in calls if c.image_key == window.image_key and c.schema == "spaces_v1"]
    held = [c for c in seen if c.url_digest == window.digest and c.fault == "429"]
    fresh = [
        c
        for c in seen
        if c.url_digest not in (None, window.digest) and c.fault == "pass" and held
        if c.at > held[0].at
    ]
    if held and fresh:
        return Check("T25", "window_missed", 0)
    why = "the planted URL was never held back" if not held else "no fresh URL followed it"
    return Check("T25", "window_missed", 1, (f"{window.run_id}: {why}",))


def url_steps_failed(runs: Iterable[UrlRun]) -> Check:
    """T25: runs whose step 0 did not proceed at its first attempt, or with a refused call."""
    found = [
        f"{r.run_id}: step 0 attempt 1 {r.step0_first_decision}, attempts {r.step0_attempts},"
        f" refused calls {r.refused_calls}"
        for r in runs
        if r.step0_first_decision != "proceed" or r.step0_attempts > 1 or r.refused_calls
    ]
    return Check("T25", "url_steps_failed", len(found), tuple(found[:_EVIDENCE]))
