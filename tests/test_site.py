"""The course website (``make site``) in a real browser: headless Chromium opens the built files.

One site is built for this module, the way ``make site`` builds it but with only one
lecture executed, in FAST mode (the others are published without outputs, as
``mlcourse site --no-execute`` does), so the test stays fast. Screenshots and the
build time go to ``build/test-artifacts/``.
"""

import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from mlcourse import site as website
from mlcourse.notebooks import execute_notebook

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LECTURE = "04_saturated_mutagenesis"  # executed in FAST mode for the test: it has figures and math
FINDINGS = "| finding | value | holds |\n|---|---|---|\n| planted motif recovered | 0.93 >= 0.8 | yes |\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site, built with a FAST-mode run of :data:`LECTURE` (the other lectures without outputs)."""
    folder = tmp_path_factory.mktemp("site")
    executed = folder / "executed"
    executed.mkdir()
    nb = execute_notebook(ROOT / "lectures" / f"{LECTURE}.ipynb", fast=True, timeout=600)
    nbformat.write(nb, executed / f"{LECTURE}.ipynb")
    (folder / "findings.md").write_text(FINDINGS)
    started = time.monotonic()
    out = website.build_site(ROOT, folder / "site", executed=[executed], execute=None,
                             findings=folder / "findings.md")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "site_build.json").write_text(json.dumps({
        "build_seconds_from_executed": round(time.monotonic() - started, 1),
        "site_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file())}, indent=1))
    return out


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is not installed: run `apt-get install chromium` "
                    "(.ci/run installs it when missing)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every request that failed (a missing file, a blocked download).

    Requests cut short because the test moved on to another page (``net::ERR_ABORTED``) do not count.
    """
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    tab = context.new_page()
    tab.failed = []
    tab.on("requestfailed", lambda request: request.failure == "net::ERR_ABORTED"
           or tab.failed.append(f"{request.url}: {request.failure}"))
    yield tab
    context.close()


def lecture(name: str) -> str:
    return f"lectures/{name}.html"


def test_the_site_opens_from_its_folder_and_its_links_lead_from_lecture_to_lecture(built, page):
    page.goto((built / "index.html").as_uri())
    assert "Predicting TF binding" in page.locator("h1").first.inner_text()
    page.locator("article").get_by_role("link", name="course overview", exact=True).click()
    assert page.url.endswith(lecture("00_course_overview"))
    # the overview's table of lectures links to each lecture
    page.locator(f'article a[href="{LECTURE}.html"]').first.click()
    assert page.url.endswith(lecture(LECTURE))
    assert "mutagenesis" in page.locator("h1").first.inner_text().lower()
    page.locator("a.right-next").click()  # the "next" button at the bottom
    assert page.url.endswith(lecture("05_sis_mnist"))
    page.locator("a.left-prev").click()
    assert page.url.endswith(lecture(LECTURE))
    # every lecture is in the navigation (seen from the home page: the current page links to "#")
    page.goto((built / "index.html").as_uri())
    nav = page.locator("nav.bd-docs-nav a").evaluate_all("links => links.map(a => a.href)")
    for path in sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb")):
        assert any(href.endswith(lecture(path.stem)) for href in nav), f"{path.stem} is not in the navigation"
    assert page.failed == [], f"requests failed: {page.failed}"


def test_a_lecture_page_shows_its_figures_rendered_math_and_when_it_ran(built, page):
    page.goto((built / lecture(LECTURE)).as_uri())
    page.wait_for_selector("mjx-container", timeout=30_000)  # MathJax typeset the page
    try:
        assert page.locator("mjx-container").count() >= 5
        assert page.locator("mjx-merror").count() == 0, "MathJax could not typeset some formula"
        figures = page.locator(".cell_output img")
        assert figures.count() >= 2
        sizes = figures.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        assert all(done and width > 100 for done, width in sizes), f"figures not loaded: {sizes}"
        note = page.locator("article .admonition.note").first.inner_text()
        assert "FAST mode" in note and "CPU cores" in note and "UTC" in note, note
        assert page.failed == [], f"requests failed: {page.failed}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "site_lecture.png"))


def test_search_finds_integrated_gradients(built, page):
    page.goto((built / "search.html").as_uri() + "?q=integrated+gradients")
    results = page.locator("#search-results li a")
    results.first.wait_for(timeout=30_000)
    hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any("11_saliency_ig_deeplift" in href for href in hrefs), hrefs
    assert any("03_integrated_gradients" in href for href in hrefs), hrefs  # the lab
    page.locator("#search-results li a", has_text="Saliency").first.click()
    assert "11_saliency_ig_deeplift" in page.url
    assert "integrated gradients" in page.locator("article").inner_text().lower()


def test_labs_findings_runs_and_api_reference_are_published(built, page):
    page.goto((built / "labs" / "release" / "03_integrated_gradients.html").as_uri())
    assert "YOUR CODE HERE" in page.locator("article").inner_text()
    page.goto((built / "findings.html").as_uri())
    assert "planted motif recovered" in page.locator("article table").inner_text()
    page.goto((built / "runs.html").as_uri())
    runs = page.locator("article table").inner_text()
    assert "FAST" in runs and "not executed" in runs
    page.goto((built / "api" / "mlcourse.interpret.paths.html").as_uri())
    assert page.locator("dt.sig", has_text="integrated_gradients").count() >= 1
    assert not (built / "api" / "mlcourse.grading.html").exists()


def test_no_internal_link_of_the_whole_site_is_broken(built, tmp_path):
    assert website.broken_links(built) == []
    # the check finds what it looks for: a missing page, a missing anchor, a script from the network
    copy = tmp_path / "site"
    shutil.copytree(built, copy)
    page = copy / "index.html"
    page.write_text(page.read_text().replace(
        "</body>", '<a href="lectures/99_missing.html">x</a><a href="runs.html#nowhere">y</a>'
                   '<script src="https://cdn.example.org/x.js"></script></body>'))
    found = website.broken_links(copy)
    assert len(found) == 3 and all(msg.startswith("index.html: ") for msg in found), found


def test_no_page_shows_a_solution_or_a_hidden_test(built, tmp_path):
    assert website.leaks(built, ROOT / "labs" / "source") == []
    assert len(list((built / "labs" / "release").glob("*.html"))) == len(
        list((ROOT / "labs" / "release").glob("*.ipynb")))
    # the check finds a source lab: by its markers, and by its solutions' text without them
    copy = tmp_path / "site"
    shutil.copytree(built, copy)
    source = ROOT / "labs" / "source" / "03_integrated_gradients.ipynb"
    shutil.copy(source, copy / "_sources" / "lab.ipynb")
    stripped = source.read_text().replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    stripped = stripped.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", "")
    (copy / "page.ipynb").write_text(stripped)
    found = website.leaks(copy, ROOT / "labs" / "source")
    assert any(m.startswith("_sources/lab.ipynb: contains '### BEGIN") for m in found), found
    assert any(m.startswith("page.ipynb: contains a source lab's block") for m in found), found


def test_a_stale_or_fast_executed_copy_is_not_used_for_a_full_mode_site(tmp_path):
    path = ROOT / "lectures" / "00_course_overview.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["mlcourse"] = {"mode": "FAST", "machine": "test machine",
                               "executed": "2026-01-02T03:04:05+00:00", "seconds": 65.0}
    (tmp_path / "fast").mkdir()
    nbformat.write(nb, tmp_path / "fast" / path.name)
    assert website.executed_copy(path, [tmp_path / "fast"], mode="full") is None
    assert website.executed_copy(path, [tmp_path / "fast"]) is not None
    note = website.run_note(nb, "lectures/00_course_overview.ipynb")
    assert "2026-01-02 03:04 UTC" in note and "FAST mode" in note and "1 min 05 s" in note
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_code.source += "\nprint('changed')"
    (tmp_path / "stale").mkdir()
    nbformat.write(nb, tmp_path / "stale" / path.name)
    assert website.executed_copy(path, [tmp_path / "stale"]) is None


def test_widget_views_become_a_note_and_progress_bars_keep_their_text():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    cell = nbformat.v4.new_code_cell("explorer", outputs=[
        nbformat.v4.new_output("display_data", data={website.WIDGET_VIEW: view,
                                                     "text/plain": "VBox(children=(IntSlider(value=3),))"}),
        nbformat.v4.new_output("display_data", data={website.WIDGET_VIEW: view,
                                                     "text/plain": "epochs: 100%|##########| 3/3"}),
    ])
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    cleaned = website.without_widgets(nb)
    first, second = (out["data"] for out in cleaned.cells[0].outputs)
    assert first == {"text/html": website.WIDGET_NOTE}
    assert second == {"text/plain": "epochs: 100%|##########| 3/3"}
    assert "widgets" not in cleaned.metadata and website.WIDGET_VIEW in nb.cells[0].outputs[0]["data"]
