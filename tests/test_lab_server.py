"""`make lab` really serves the course: the same command, headless, answers with a token and
refuses without one. Also checks the `mlcourse` command line."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from conftest import ROOT

from mlcourse import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(port: int, token: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_make_lab_uses_the_cli():
    make_lab = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True)
    assert "mlcourse lab" in make_lab.stdout


def page_config(port: int, token: str) -> dict:
    """The page config JupyterLab sends to the browser (the JSON in its ``jupyter-config-data`` script)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as response:
        html = response.read().decode()
    data = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert data, "the lab page has no jupyter-config-data"
    return json.loads(data.group(1))


def test_lab_serves_with_token_only_and_hides_instructor_menus(tmp_path):
    port, token = free_port(), "course-test-token"
    cmd = cli.lab_command(ROOT, port=port, open_browser=False)
    assert "--ServerApp.ip=127.0.0.1" in cmd
    env = dict(cli.lab_environment(ROOT), JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path))
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        code = None
        while time.time() < deadline:
            if server.poll() is not None:
                raise AssertionError(f"jupyter lab exited: {server.stderr.read().decode()[-2000:]}")
            try:
                code = status(port, token)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert code == 200, f"/api/status with the token answered {code}"
        assert status(port, None) == 403
        assert status(port, "wrong-token") == 403
        disabled = page_config(port, token)["disabledExtensions"]
        for plugin in ["@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                       "@jupyter/nbgrader:menu", "@jupyterlab/apputils-extension:announcements"]:
            assert plugin in disabled, f"{plugin} is shown to students"
        assert "@jupyter/nbgrader:validate-assignment" not in disabled  # students may validate
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "mlcourse.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("lab", "run"):
        assert command in out.stdout


def test_course_root_error_names_the_folder(tmp_path):
    try:
        cli.course_root(tmp_path)
    except ValueError as err:
        assert str(tmp_path) in str(err) and "lectures" in str(err)
    else:
        raise AssertionError("course_root found a course in an empty folder")


def test_instructors_keep_nbgrader_and_users_keep_their_config(tmp_path):
    env = cli.lab_environment(tmp_path, instructor=True, environ={"JUPYTER_CONFIG_PATH": "/my/config"})
    first, mine = env["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert mine == "/my/config" and first == str(tmp_path / "build" / "jupyter")
    page = json.loads((tmp_path / "build" / "jupyter" / "labconfig" / "page_config.json").read_text())
    assert list(page["disabledExtensions"]) == ["@jupyterlab/apputils-extension:announcements"]
