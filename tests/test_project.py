"""The README, environment.yml, pyproject.toml, Makefile and CI agree with each other."""

import re
import sys

import yaml
from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
CI = (ROOT / ".ci" / "run").read_text()
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def all_requirements():
    project = PYPROJECT["project"]
    yield from project["dependencies"]
    for extra in project["optional-dependencies"].values():
        yield from extra


def test_dependencies_are_ranges_not_pins():
    for req in all_requirements():
        assert "==" not in req and "~=" not in req, f"{req!r} pins a version; use a range"


def test_the_required_libraries_are_declared():
    names = {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in all_requirements()}
    for lib in ["torch", "torchvision", "captum", "ipywidgets", "matplotlib", "jupyterlab", "numpy",
                "scikit-learn", "pandas", "tqdm", "pooch", "pyjaspar", "logomaker", "mlxtend",
                "pytest", "nbval", "pytest-timeout", "ruff", "nbgrader"]:
        assert lib in names, f"{lib} is missing from pyproject.toml"


def test_readme_gives_the_two_commands_first():
    first_section = README.split("\n## ", 2)[1]
    assert "make lab" in first_section and "make test" in first_section


def test_ci_runs_the_readme_test_command():
    assert "make test" in README
    commands = [line.strip() for line in CI.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test", ".ci/run must end by running `make test`, as the README says"


def test_makefile_installs_extras_that_exist():
    extras = re.search(r"^EXTRAS\s*:=\s*(\S+)", MAKEFILE, re.M).group(1).split(",")
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])
    assert "test" in extras
    # lab and test install through the numba cache's stamp, which installs first
    assert re.search(r"^\$\(NUMBA_STAMP\):.*\$\(STAMP\)", MAKEFILE, re.M), "the numba cache needs the install"
    for target in ("lab", "test", "run"):
        assert re.search(rf"^{target}:.*\$\((NUMBA_)?STAMP\)", MAKEFILE, re.M), f"make {target} must install first"


def test_make_install_fills_the_numba_cache_before_lab_and_test():
    """The kernels compile once at install (mlcourse.numba_cache), not in each process that first uses them."""
    assert re.search(r"^\$\(NUMBA_STAMP\):(.*\n\t.*)*python -m mlcourse\.numba_cache", MAKEFILE, re.M)
    for target in ("install", "lab", "test"):
        assert re.search(rf"^{target}:.*\$\(NUMBA_STAMP\)", MAKEFILE, re.M), f"make {target} must fill the cache"


def test_conda_route_matches_pyproject():
    pip_lines = next(d["pip"] for d in ENV["dependencies"] if isinstance(d, dict))
    assert "-e .[test]" in pip_lines
    python = next(d for d in ENV["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert PYPROJECT["project"]["requires-python"].split(",")[0] in python
    assert "conda env create -f environment.yml" in README


def test_console_script():
    assert PYPROJECT["project"]["scripts"]["mlcourse"] == "mlcourse.cli:main"


def test_processes_started_by_the_tests_skip_rfc3987_syntax_and_nbformat_still_validates():
    """tests/import_blocks keeps jsonschema from building rfc3987-syntax's grammar (1.7 s a process)."""
    import subprocess

    check = ("import sys, nbformat\n"
             "nbformat.validate(nbformat.v4.new_notebook())\n"
             "bad = nbformat.v4.new_notebook(); bad.cells.append({'cell_type': 'code', 'source': 1})\n"
             "try:\n    nbformat.validate(bad)\nexcept nbformat.ValidationError:\n    pass\n"
             "else:\n    raise SystemExit('an invalid notebook passed')\n"
             "assert 'rfc3987_syntax' not in sys.modules, sys.modules['rfc3987_syntax']\n")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
