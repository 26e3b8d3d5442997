"""The course in a real browser: JupyterLab started as ``make lab`` does, driven by headless Chromium.

A small notebook that builds a real :mod:`mlcourse.widgets` explorer is opened in
JupyterLab, run, and its slider dragged with the mouse; the test passes only when
the widget JavaScript renders the slider and the readout and figure it drives change.
A screenshot is saved to ``build/test-artifacts/`` (also when the test fails).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from mlcourse.cli import OVERVIEW, lab_command

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
NOTEBOOK = "widget_check.ipynb"
CELLS = [
    "import torch\n"
    "from mlcourse import widgets\n"
    "from mlcourse.dna import one_hot\n"
    "from mlcourse.models.zeng import build\n"
    "torch.manual_seed(0)\n"
    "model = build('1layer').eval()",
    "x = one_hot('ACGT' * 25 + 'A')\n"
    "explorer = widgets.ig_path_explorer(model, x, steps=20)\n"
    "explorer",
]
# What JupyterLab shows instead of a widget when the widget JavaScript is missing or broken.
WIDGET_ERRORS = ("Loading widget...", "Error displaying widget", "model not found")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def course_copy(folder: Path) -> Path:
    """A course folder (the overview ``make lab`` opens, plus the widget notebook) under ``folder``."""
    (folder / "lectures").mkdir(parents=True)
    shutil.copy(ROOT / OVERVIEW, folder / OVERVIEW)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "lectures" / NOTEBOOK)
    return folder


def wait_for_server(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited with code {server.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url} within {timeout:.0f} s")


def stop_server(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut JupyterLab down through its API (which also stops the kernel), then make sure."""
    try:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        server.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def widget_error(page) -> str | None:
    text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    return next((msg for msg in WIDGET_ERRORS if msg in text), None)


def run_all_cells(page) -> None:
    """Run > Run All Cells once the kernel is idle; again if no cell started (a click lost in start-up)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=120_000)
    any_cell_started = "() => [...document.querySelectorAll('.jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    for _ in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(any_cell_started, timeout=20_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("Run > Run All Cells did not start any cell in three tries")


def drag(page, handle, track, fraction: float) -> None:
    """Press the slider handle, move it to ``fraction`` of the track, release."""
    box, bar = handle.bounding_box(), track.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(bar["x"] + fraction * bar["width"], box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()


@pytest.mark.browser
def test_widget_slider_drives_its_output_in_jupyterlab(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is not installed: run `apt-get install chromium` "
                    "(.ci/run installs it when missing)")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    root = course_copy(tmp_path / "course")
    port, token = free_port(), "mlcourse-browser-test"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "browser_widget.png"
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(lab_command(root, port, open_browser=False), cwd=root, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_server(f"{base}/api/status?token={token}", server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{base}/lab/tree/lectures/{NOTEBOOK}?token={token}")
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
                run_all_cells(page)
                try:
                    page.wait_for_selector(".widget-slider .noUi-handle", timeout=180_000)
                except PlaywrightTimeout:
                    shown = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
                    raise AssertionError(
                        "no ipywidgets slider rendered within 180 s: the widget JavaScript did not "
                        f"load ({widget_error(page) or 'no widget view'}) or the cell failed; "
                        f"the notebook shows:\n{shown[-1500:]}"
                    ) from None
                assert widget_error(page) is None, f"widget error shown: {widget_error(page)!r}"
                readout = page.locator(".widget-html-content").first
                image = page.locator(".jupyter-widgets img").first
                page.wait_for_function("el => el.textContent.includes('alpha = 0.50')",
                                       arg=readout.element_handle(), timeout=60_000)
                before_text, before_src = readout.inner_text(), image.get_attribute("src")
                drag(page, page.locator(".widget-slider .noUi-handle").first,
                     page.locator(".widget-slider .noUi-target").first, 0.9)
                page.wait_for_function(
                    "([el, old]) => el.textContent !== old", arg=[readout.element_handle(), before_text],
                    timeout=60_000)
                after_text = readout.inner_text()
                assert "alpha = 0.50" not in after_text and "alpha = " in after_text, after_text
                assert float(after_text.split("alpha = ")[1][:4]) > 0.7, after_text
                page.wait_for_function("([el, old]) => el.getAttribute('src') !== old",
                                       arg=[image.element_handle(), before_src], timeout=60_000)
            finally:
                page.screenshot(path=str(screenshot), full_page=True)
                browser.close()
    finally:
        stop_server(server, base, token)
        log.close()
    (ARTIFACTS / "browser_widget.json").write_text(
        json.dumps({"before": before_text, "after": after_text,
                    "seconds": round(time.monotonic() - started, 1)}, indent=1))
