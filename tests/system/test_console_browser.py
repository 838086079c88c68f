"""The operator console in a real browser: headless Chromium (the distribution's, driven by
Playwright; never a downloaded browser) against the ingress and workers of the local stack.

A run that blocks is found in the queue, opened, shows the failures that blocked it, is approved
through the page, and proceeds in PostgreSQL with the signed-in operator as its reviewer; a
user's token is refused at sign-in; a form posted without its CSRF field is refused; a dead
letter is listed with its error and source and redriven with a reason, as the operator.
"""

import shutil
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from planstream.adapters.http.client import PlanstreamClient
from planstream.adapters.http.tokens import mint
from planstream.adapters.kafka import redrive as dead_letters
from planstream.domain.ids import new_id
from planstream.domain.principals import OPERATOR
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.stackkit import wait_for
from tests.system.runs import scenario_run, until
from tests.system.test_image_io import _send

OPERATOR_SUBJECT = "console-operator"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the console's browser test drives the distribution's Chromium, and there is none "
            "on PATH: apt-get install chromium (.ci/run installs it when missing)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    yield opened
    await context.close()


def _violations(page: Page) -> list[str]:
    """The page's Content-Security-Policy violations, as Chromium reports them."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security" in m.text else None)
    return found


async def _sign_in(page: Page, base: str, token: str) -> None:
    """Sign in the way `planstream console` does: the token in the URL's fragment."""
    await page.goto(f"{base}/console/sign-in#token={token}")
    await page.wait_for_url(f"{base}/console/blocked")
    assert "token=" not in page.url


async def _blocked_run(settings: Settings, ingress_url: str, token: str) -> str:
    """A run whose model always misses the bathroom: blocked after its 3 attempts."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = PlanstreamClient(ingress_url, session, token)
        return await until(client, await scenario_run(client, settings, "missing_room"), "blocked")


async def test_a_blocked_run_is_found_opened_and_approved_through_the_page(
    page: Page, settings: Settings, ingress_url: str, operator_token: str, pool: asyncpg.Pool
) -> None:
    run_id = await _blocked_run(settings, ingress_url, operator_token)
    violations = _violations(page)
    await _sign_in(page, ingress_url, mint(settings, OPERATOR_SUBJECT, roles=(OPERATOR,)))

    # The queue lists it; its page opens from there.
    await page.get_by_role("link", name=run_id).click()
    await page.wait_for_url(f"{ingress_url}/console/runs/{run_id}")

    # The timeline shows the block and the failures that caused it, and the plan's thumbnail
    # loads through a signed URL the page's policy allows.
    block = await pool.fetchrow(
        "SELECT attempt, block_reason, rule_checks FROM pipeline_decisions"
        " WHERE run_id = $1 AND decision = 'block' AND decided_by = 'supervisor'",
        run_id,
    )
    rules = {failure["rule"] for failure in block["rule_checks"]["failures"]}
    assert rules, block
    section = page.locator(f"#step-0-attempt-{block['attempt']}")
    text = await section.inner_text()
    assert "Supervisor's decision: block" in text and block["block_reason"] in text
    for rule in rules:
        assert rule in text, (rule, text)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.gallery img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )

    # Approved through the form, by keyboard-reachable controls with labels.
    await page.get_by_label("Approve: go on to the next step").check()
    await page.get_by_label("Reason (required, kept with the decision)").fill(
        "the bathroom is outside the sheet"
    )
    await page.get_by_role("button", name="Send the review").click()
    await page.wait_for_url(f"{ingress_url}/console/runs/{run_id}?review=*")
    assert "Your review was sent" in await page.locator("#review").inner_text()

    # The run proceeds in PostgreSQL, with the signed-in operator as its reviewer.
    async def proceeded() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT r.status, d.llm_audit, v.reviewer, v.action FROM pipeline_runs r"
            " JOIN pipeline_decisions d ON d.run_id = r.run_id AND d.decided_by = 'reviewer'"
            " JOIN run_reviews v ON v.run_id = r.run_id"
            " WHERE r.run_id = $1 AND r.status <> 'blocked'",
            run_id,
        )

    done = await wait_for(proceeded, timeout_s=120)
    assert (done["reviewer"], done["action"]) == (OPERATOR_SUBJECT, "approve")
    assert f"decided by {OPERATOR_SUBJECT}" in str(done["llm_audit"])
    await page.reload()
    assert "Reviewer's decision: proceed" in await section.inner_text()
    assert violations == []


async def test_a_user_token_is_refused_at_sign_in(
    page: Page, ingress_url: str, user_token: str
) -> None:
    await page.goto(f"{ingress_url}/console/sign-in")
    await page.get_by_label("Operator token (a JWT)").fill(user_token)
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="Sign in").click()
    assert (await answer.value).status == 403
    assert "for operators" in await page.locator("main").inner_text()
    cookies = await page.context.cookies()
    assert not [c for c in cookies if c["name"] == "planstream_console"]


async def test_a_form_posted_without_its_csrf_field_is_refused(
    page: Page, settings: Settings, ingress_url: str
) -> None:
    await _sign_in(page, ingress_url, mint(settings, OPERATOR_SUBJECT, roles=(OPERATOR,)))
    run_id = "run_" + "0" * 32
    answer = await page.request.post(
        f"{ingress_url}/console/runs/{run_id}/review",
        form={"action": "approve", "reason": "no csrf field"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "CSRF" in await answer.text()
    answer = await page.request.post(
        f"{ingress_url}/console/dead-letters/redrive",
        form={"letter": "0:0", "reason": "no csrf field"},
        max_redirects=0,
    )
    assert answer.status == 403


async def test_a_dead_letter_is_listed_and_redriven_with_a_reason(
    page: Page, settings: Settings, ingress_url: str, pool: asyncpg.Pool
) -> None:
    run_id = new_id("run")  # no such run: Image I/O dead-letters its step request
    await _send(settings, make_step_requested(run_id=run_id, input_artifact_ids=[new_id("art")]))

    async def letter() -> dead_letters.DeadLetter | None:
        found = dead_letters.select(await dead_letters.read_dead_letters(settings), run_id, None)
        return found[0] if found else None

    refused = await wait_for(letter)
    await _sign_in(page, ingress_url, mint(settings, OPERATOR_SUBJECT, roles=(OPERATOR,)))
    await page.goto(f"{ingress_url}/console/dead-letters?run={run_id}")
    row = page.locator("#letters tbody tr").first
    text = await row.inner_text()
    assert f"run {run_id} does not exist" in text and "step.requested" in text
    await page.get_by_label(f"{refused.partition}:{refused.offset}", exact=True).check()
    await page.get_by_label("Reason (kept with the redrive)").fill("checking the console")
    await page.get_by_role("button", name="Redrive the selected letters").click()
    await page.wait_for_url(f"{ingress_url}/console/dead-letters?redriven=1&skipped=0")
    audit = await pool.fetchrow(
        "SELECT operator, reason, run_id FROM dead_letter_redrives"
        " WHERE dlq_partition = $1 AND dlq_offset = $2",
        refused.partition,
        refused.offset,
    )
    assert dict(audit) == {
        "operator": OPERATOR_SUBJECT,
        "reason": "checking the console",
        "run_id": run_id,
    }


async def test_the_policy_violation_check_sees_a_violation(page: Page) -> None:
    """The self-test of ``_violations``: an inline script under the console's policy is caught."""
    found = _violations(page)
    await page.set_content(
        '<meta http-equiv="Content-Security-Policy" content="script-src \'self\'">'
        "<script>document.title = 'ran'</script>"
    )
    assert found and await page.title() != "ran"
