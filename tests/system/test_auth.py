"""Authentication and ownership at the real ingress: who may call, and whose runs they see."""

import aiohttp

from planstream.adapters.http.client import post_upload
from planstream.adapters.http.tokens import mint
from planstream.dev.chaos.abuse import NO_RUN, bad_authorizations, token_attacks
from planstream.settings import Settings
from tests.images import floor_plan_png


async def test_every_v1_endpoint_answers_401_to_a_missing_or_bad_token(
    settings: Settings, ingress_url: str
) -> None:
    async with aiohttp.ClientSession() as http:
        for attack in token_attacks(settings):  # each bad token on each endpoint
            async with http.request(
                attack.method,
                ingress_url + attack.path,
                data=attack.body,
                headers=dict(attack.headers),
            ) as answer:
                assert answer.status == 401, attack.name
                challenge = answer.headers["WWW-Authenticate"]
                assert challenge.startswith("Bearer "), challenge
                assert 'error="invalid_token"' in challenge
                assert "error_description=" in challenge
        async with http.get(f"{ingress_url}/healthz") as answer:
            assert answer.status == 200  # the health check stays open


async def test_the_reason_is_named_in_the_challenge(settings: Settings, ingress_url: str) -> None:
    expired = bad_authorizations(settings)["expired"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{ingress_url}/v1/runs/{NO_RUN}", headers=expired) as answer,
    ):
        assert "expired" in answer.headers["WWW-Authenticate"]


async def _own_run(http: aiohttp.ClientSession, base: str, token: str) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(
        f"{base}/v1/uploads", json={"content_type": "image/png"}, headers=auth
    ) as r:
        slot = await r.json()
        assert r.status == 201, slot
    async with aiohttp.ClientSession() as storage:  # no Authorization header for S3
        assert await post_upload(storage, slot, floor_plan_png(), "image/png") == 204
    body = {"upload_id": slot["upload_id"]}
    async with http.post(f"{base}/v1/runs", json=body, headers=auth) as r:
        created = await r.json()
        assert r.status == 201, created
    return slot["upload_id"], created["run_id"]


async def test_a_second_subject_gets_404_for_the_first_subjects_run_and_upload(
    settings: Settings, ingress_url: str, operator_token: str
) -> None:
    alice, bob = mint(settings, "alice"), mint(settings, "bob")
    as_bob = {"Authorization": f"Bearer {bob}"}
    async with aiohttp.ClientSession() as http:
        upload_id, run_id = await _own_run(http, ingress_url, alice)
        async with http.get(f"{ingress_url}/v1/runs/{run_id}", headers=as_bob) as answer:
            assert answer.status == 404
        url = f"{ingress_url}/v1/runs/{run_id}/steps/0"
        async with http.post(url, headers={**as_bob, "Idempotency-Key": "bob-1"}) as answer:
            assert answer.status == 404
        body = {"upload_id": upload_id}
        async with http.post(f"{ingress_url}/v1/runs", json=body, headers=as_bob) as answer:
            refused = await answer.json()
            assert (answer.status, refused["field"]) == (404, "upload_id")
        # The same answers as for ids that do not exist: no oracle.
        async with http.get(f"{ingress_url}/v1/runs/{NO_RUN}", headers=as_bob) as answer:
            assert answer.status == 404
        for token, owner in ((alice, "alice"), (operator_token, "alice")):
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get(f"{ingress_url}/v1/runs/{run_id}", headers=auth) as answer:
                view = await answer.json()
                assert (answer.status, view["owner"]) == (200, owner)


async def test_a_user_may_not_review_and_may_not_name_a_reviewer(
    settings: Settings, ingress_url: str
) -> None:
    user = {"Authorization": f"Bearer {mint(settings, 'alice')}"}
    operator = {"Authorization": f"Bearer {mint(settings, 'olga', roles=['operator'])}"}
    url = f"{ingress_url}/v1/runs/{NO_RUN}/review"
    async with aiohttp.ClientSession() as http:
        body = {"action": "approve", "reason": "looks fine"}
        async with http.post(url, json=body, headers=user) as answer:
            assert answer.status == 403
        forged = {**body, "reviewer": "someone-else"}
        async with http.post(url, json=forged, headers=operator) as answer:
            refused = await answer.json()
            assert (answer.status, refused["field"]) == (422, "reviewer")
