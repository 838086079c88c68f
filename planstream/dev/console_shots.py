"""``make screenshots``: the console's queue and a run page as PNGs for the README, from the local
stack after ``make demo`` (which leaves blocked runs), in the distribution's headless Chromium.

Uses the ingress at the configured address, or starts one for the time it takes. The run shown is
the first in the queue whose page draws spaces over the plan (else the first).
"""

import argparse
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from playwright.sync_api import Page, ViewportSize, sync_playwright

from planstream.adapters.http.tokens import mint
from planstream.dev import launcher
from planstream.domain.principals import OPERATOR
from planstream.settings import Settings

__all__ = ["main", "take"]

_VIEWPORT: Final = ViewportSize(width=1280, height=800)
_RUN_PAGE_HEIGHT: Final = 2_400  # the run page's top: facts, review, images, first attempt
_IMAGES_LOADED: Final = (
    "() => [...document.querySelectorAll('img, svg image')].every("
    "i => i.tagName.toLowerCase() === 'image' || (i.complete && i.naturalWidth > 0))"
)


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _run_to_show(page: Page, base: str) -> str:
    links = page.locator("#queue tbody a")
    hrefs = (links.nth(i).get_attribute("href") for i in range(links.count()))
    runs = [href for href in hrefs if href]
    if not runs:
        raise SystemExit("no blocked run to show: run `make demo` first")
    for href in runs:
        page.goto(base + href)
        if page.locator("svg.overlay g.space").count():
            return href
    return runs[0]


def take(settings: Settings, base: str, out: Path, executable: str) -> tuple[Path, Path]:
    """Sign in as `planstream console` does, then photograph the queue and one run."""
    token = mint(settings, "console-screenshots", roles=(OPERATOR,), ttl_s=600)
    queue_png, run_png = out / "console-queue.png", out / "console-run.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport=_VIEWPORT)
            page.goto(f"{base}/console/sign-in#token={token}")
            page.wait_for_url(f"{base}/console/blocked")
            page.screenshot(path=queue_png)
            href = _run_to_show(page, base)
            page.goto(base + href)
            page.wait_for_function(_IMAGES_LOADED)
            height = min(_RUN_PAGE_HEIGHT, int(page.evaluate("document.body.scrollHeight")))
            page.screenshot(
                path=run_png,
                full_page=True,
                clip={"x": 0, "y": 0, "width": _VIEWPORT["width"], "height": height},
            )
        finally:
            browser.close()
    return queue_png, run_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planstream.dev.console_shots")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go")
    args = parser.parse_args(argv)
    executable = shutil.which("chromium")
    if executable is None:
        print("screenshots: no chromium on PATH: apt-get install chromium", file=sys.stderr)
        return 2
    settings = Settings.from_env(os.environ)
    base = f"http://127.0.0.1:{settings.ingress_port}"
    if _answers(base):
        shots = take(settings, base, args.out, executable)
    else:
        logs = settings.work_dir / "screenshots" / "logs"
        with launcher.running(settings, [launcher.ingress()], logs):
            shots = take(settings, base, args.out, executable)
    for shot in shots:
        print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
