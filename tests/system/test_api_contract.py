"""The ingress true to its OpenAPI document: schemathesis (its CLI, from the venv) fuzzes every
route of the live ingress, as a user and as an operator, and checks that no answer is a 5xx and
that every status, media type, header and body is one the document names.

Bounded: ``--max-examples`` per operation, a request timeout, a timeout on the whole run, a
fixed seed, no example database; schemathesis runs in a temporary folder so the files it keeps
(.hypothesis, .schemathesis) stay out of the repository. A run id of a real blocked run is one
of the values it draws (a dictionary), so the full run view, its reviews and its step requests
are checked, not only 404s. The user's run meets a replica whose run quota is spent (429 with
Retry-After). A self-test feeds it a document that asks for a field the server never sends.
"""

import asyncio
import collections
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.http.openapi import DOCUMENT_PATH
from planstream.dev.isolation import free_port
from planstream.dev.launcher import ingress, running
from planstream.settings import Settings
from tests.stackkit import ROOT
from tests.system.runs import scenario_run, until

ST = Path(sys.executable).with_name("st")
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
MAX_EXAMPLES = 50  # per operation; with the coverage phase's cases, about 400 requests a role
SEED = 16  # the same cases on every run
# Over the ingress's 30 s handler deadline: a slow request meets the server's documented 503
# first, and a request timeout means the ingress did not even keep its deadline.
REQUEST_TIMEOUT_S = 35
RUN_TIMEOUT_S = 240  # one `st run`
pytestmark = pytest.mark.timeout(420)  # the blocked run (up to 120 s), then one `st run`


@pytest.fixture(scope="module")
async def blocked_run(ingress_url: str, user_token: str, settings: Settings) -> str:
    """A run of the test's user that the Supervisor blocked (the model misses a room)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, user_token)
        return await until(client, await scenario_run(client, settings, "missing_room"), "blocked")


@pytest.fixture(scope="module")
def spent_quota(settings: Settings, logs: Path, ingress_url: str) -> Iterator[str]:
    """A replica of the ingress (the session's database) that allows one run a minute."""
    strict = settings.with_overrides(ingress_port=free_port(), quota_runs_per_minute=1)
    with running(strict, [ingress()], logs / "api-contract"):
        yield f"http://127.0.0.1:{strict.ingress_port}"


async def _schemathesis(folder: Path, config: Path, *args: str) -> tuple[int, str]:
    """``st run`` with ``config`` and ``args`` in ``folder``; its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        str(ST),
        "--config-file",
        str(config),
        "run",
        *args,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--no-color",
        "--report",
        "har",
        "--report-dir",
        str(folder / "report"),
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"schemathesis did not finish within {RUN_TIMEOUT_S} s") from None
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


def _config(folder: Path, run_id: str, probability: float = 0.5) -> Path:
    """A schemathesis config drawing ``run_id`` for the path's run id this often."""
    path = folder / "schemathesis.toml"
    path.write_text(
        f'[dictionaries.runs]\nvalues = ["{run_id}"]\n\n'
        f'[parameters]\n"path.run_id" = {{ dictionary = "runs", probability = {probability} }}\n'
    )
    return path


def _answers(folder: Path) -> collections.Counter[tuple[str, str, int]]:
    """(method, route, status) -> how many requests, from the run's HAR report."""
    [har] = (folder / "report").glob("har-*.json")
    counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?")[0]
        route = re.sub(r"^/v1/runs/[^/]+", "/v1/runs/{run_id}", path)
        counts[(entry["request"]["method"], route, entry["response"]["status"])] += 1
    return counts


def _summary(output: str, answers: collections.Counter[tuple[str, str, int]]) -> str:
    cases = re.search(r"\d+ generated.*", output)
    table = "\n".join(f"  {k[0]} {k[1]} {k[2]}: {n}" for k, n in sorted(answers.items()))
    return f"{cases.group(0) if cases else output[-3000:]}\n{table}"


async def _fuzz(
    folder: Path, base: str, token: str, run_id: str
) -> collections.Counter[tuple[str, str, int]]:
    status, output = await _schemathesis(
        folder,
        _config(folder, run_id),
        f"{base}{DOCUMENT_PATH}",
        "--header",
        f"Authorization: Bearer {token}",
    )
    assert status == 0, output[-6000:]
    answers = _answers(folder)
    print(_summary(output, answers))  # the figures, shown with -s or -rP
    return answers


async def test_the_document_is_served_without_a_token(ingress_url: str) -> None:
    committed = (ROOT / "schemas" / "openapi.json").read_bytes()
    async with aiohttp.ClientSession() as http:
        async with http.get(ingress_url + DOCUMENT_PATH) as answer:
            assert answer.status == 200
            assert answer.content_type == "application/json"
            assert await answer.read() == committed
        async with http.post(ingress_url + DOCUMENT_PATH, json={}) as answer:
            assert answer.status == 401  # only GET of the document is open


async def test_the_ingress_keeps_its_contract_for_a_user(
    tmp_path: Path, spent_quota: str, user_token: str, blocked_run: str
) -> None:
    answers = await _fuzz(tmp_path, spent_quota, user_token, blocked_run)
    assert answers[("GET", "/v1/runs/{run_id}", 200)] > 0  # the full view was checked
    assert not any(status >= 500 for _, _, status in answers)


async def test_the_ingress_keeps_its_contract_for_an_operator(
    tmp_path: Path, ingress_url: str, operator_token: str, blocked_run: str
) -> None:
    answers = await _fuzz(tmp_path, ingress_url, operator_token, blocked_run)
    assert answers[("GET", "/v1/runs/{run_id}", 200)] > 0
    assert answers[("POST", "/v1/runs/{run_id}/review", 403)] == 0  # an operator may review


async def test_schemathesis_fails_on_a_document_the_server_does_not_keep(
    tmp_path: Path, ingress_url: str, operator_token: str, blocked_run: str
) -> None:
    """Self-test: the real document, but the run view requires a field no answer has."""
    document = json.loads((ROOT / "schemas" / "openapi.json").read_text())
    view = document["components"]["schemas"]["RunView"]
    view["properties"]["priority"] = {"type": "integer"}
    view["required"].append("priority")
    wrong = tmp_path / "wrong-openapi.json"
    wrong.write_text(json.dumps(document))
    status, output = await _schemathesis(
        tmp_path,
        _config(tmp_path, blocked_run, probability=1.0),
        str(wrong),
        "--url",
        ingress_url,
        "--include-path",
        "/v1/runs/{run_id}",
        "--include-method",
        "GET",
        "--header",
        f"Authorization: Bearer {operator_token}",
    )
    assert status != 0, output[-3000:]
    assert "Response violates schema" in output, output[-3000:]
    assert "priority" in output, output[-3000:]
