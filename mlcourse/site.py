"""The course as a static website (``make site`` / ``mlcourse site``), built offline with Sphinx.

The site is what a student can browse before installing anything: every lecture
with the outputs of one executed run, the labs' student versions, the findings and
runtimes, and an API reference generated from this package's docstrings. It is
plain files (``build/site/index.html``): open it from its folder, or copy it to
any static host (GitHub Pages, a university web space).

How a build goes:

1. **Lectures.** Each ``lectures/NN_slug.ipynb`` is taken *executed* from the
   first folder that has it (default ``build/findings/``, then ``build/``, where
   ``make findings`` and ``make run`` write them). A copy whose code differs from
   the lecture is stale and not used. A lecture with no executed copy is run
   here (:func:`mlcourse.notebooks.execute_notebook`, full mode unless FAST is
   asked for) and saved to ``build/``, so the next build reuses it. Each
   page starts with a note saying when, on which machine and in which mode it
   ran. Widget views (which need a live kernel) become a short note.
2. **Labs.** ``labs/release/`` only, as students get them: never the sources.
3. **Reference.** ``build/findings.md`` when it exists, a table of how each
   lecture was run, and one API page per module (Sphinx ``autodoc``).
4. **Sphinx** (``site/conf.py``, theme ``sphinx-book-theme``, notebooks through
   ``myst-nb``, MathJax served from the site itself) writes the HTML.
5. **Checks.** The build fails, and publishes nothing, if any file of the site
   holds ``### BEGIN SOLUTION``, ``### BEGIN HIDDEN TESTS`` or the text of a
   source lab's solution or hidden test (:func:`leaks`), if an internal link or
   anchor is broken (:func:`broken_links`), or if a page loads a script or style
   sheet from the network.
"""

from __future__ import annotations

import html
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

__all__ = [
    "FORBIDDEN", "build_site", "executed_copy", "run_record", "run_note", "without_widgets", "api_pages",
    "leaks", "broken_links", "markup_errors", "add_cli",
]

FORBIDDEN = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")
"""Text that no file of the site may contain: nbgrader's solution and hidden-test markers."""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="widget-note">An interactive widget was here: it needs a running kernel. '
               "Open this lecture in JupyterLab (<code>make lab</code>) to use it.</p>")
_WIDGET_REPR = re.compile(r"^[A-Z]\w*\((children|value|description|layout|options)=")
_MIN_LEAK = 40  # characters: shorter solution blocks (a bare `return x`) are too common to test for


def _code(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def executed_copy(lecture: Path, folders, mode: str | None = None):
    """The executed copy of ``lecture`` from the first of ``folders`` that has a usable one.

    A copy is usable when its code cells are the lecture's code cells and, if
    ``mode`` (``"full"``) is given, when it records that mode (FAST-mode copies
    are not used for a full-mode site; copies that record no mode are used).
    Returns the notebook, or None. Stale copies are reported on stderr.
    """
    source = nbformat.read(lecture, as_version=4)
    for folder in folders:
        path = Path(folder) / lecture.name
        if not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        recorded = nb.metadata.get("mlcourse", {}).get("mode")
        if _code(nb) != _code(source):
            print(f"site: {path} is stale (its code differs from {lecture}); not used", file=sys.stderr)
        elif mode and recorded and recorded != mode:
            print(f"site: {path} was run in {recorded} mode, not {mode}; not used", file=sys.stderr)
        else:
            return nb
    return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _cell_times(nb) -> tuple[datetime | None, float | None]:
    """Start time and duration of a run from nbclient's per-cell timing metadata."""
    stamps = []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        for key in ("iopub.execute_input", "shell.execute_reply"):
            if key in timing:
                stamps.append(datetime.fromisoformat(timing[key].replace("Z", "+00:00")))
    if not stamps:
        return None, None
    return min(stamps), (max(stamps) - min(stamps)).total_seconds()


def run_record(nb) -> dict:
    """How an executed notebook was run: ``executed`` (datetime or None), ``seconds``, ``mode``, ``machine``.

    Read from ``metadata["mlcourse"]`` (written by
    :func:`mlcourse.notebooks.execute_notebook`), else from the per-cell timing
    that nbclient records; what neither has is None.
    """
    meta = nb.metadata.get("mlcourse", {})
    started, seconds = _cell_times(nb)
    if meta.get("executed"):
        started = datetime.fromisoformat(meta["executed"])
    return {"executed": started, "seconds": meta.get("seconds", seconds),
            "mode": meta.get("mode"), "machine": meta.get("machine")}


def run_note(nb, lecture_path: str) -> str:
    """The note at the top of a lecture page: when, where, in which mode and how long it ran."""
    record = run_record(nb)
    if record["executed"] is None:
        return (":::{note}\nThis page was not executed for this build: it shows the lecture's code "
                f"without outputs. Run it yourself: `make lab`, then open `{lecture_path}`.\n:::\n")
    when = record["executed"].strftime("%Y-%m-%d %H:%M UTC")
    mode = {"full": "full mode (what a student runs)",
            "FAST": "FAST mode (small sizes for a quick build: figures are rougher than in a "
                    "student's full run)"}.get(record["mode"], "a mode it did not record")
    took = f"; it took {_duration(record['seconds'])}" if record["seconds"] is not None else ""
    where = record["machine"] or "a machine it did not record"
    return (f":::{{note}}\nThe outputs on this page are from a run on **{when}**, in {mode}, on "
            f"{where}{took}. Run it yourself: `make lab`, then open `{lecture_path}`.\n:::\n")


def without_widgets(nb):
    """``nb`` with every widget view replaced by a note (widgets need a kernel; a static page has none).

    A widget's plain-text fallback is kept where it is real output (a tqdm
    progress bar prints its state), and dropped where it is only the widget's
    repr (``VBox(children=...)``). Returns a copy.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if not text.strip() or _WIDGET_REPR.match(text):
                output["data"] = {"text/html": WIDGET_NOTE}
    return nb


API_LEFT_OUT = ("mlcourse.grading", "mlcourse.site")
"""Instructor tooling the API reference leaves out: it describes nbgrader's solution and
hidden-test markers, which no page of the students' site may show."""


def _modules(package: str = "mlcourse") -> dict[str, bool]:
    """``{module name: is a package}`` for the package and its modules, without importing the modules.

    ``walk_packages`` imports only the subpackages it descends into (1.2 s less
    than importing every module to ask it); Sphinx's autodoc imports them all.
    """
    root = __import__(package)
    found = {package: True} | {m.name: m.ispkg for m in pkgutil.walk_packages(root.__path__, prefix=package + ".")}
    return {name: ispkg for name, ispkg in sorted(found.items())
            if not any(name == x or name.startswith(x + ".") for x in API_LEFT_OUT)}


def api_pages(package: str = "mlcourse") -> dict[str, str]:
    """The API reference as reStructuredText pages: ``{"api/index.rst": ..., "api/<module>.rst": ...}``."""
    modules = _modules(package)
    toc = "\n".join(f"   {name}" for name in modules)
    pages = {"api/index.rst": (
        "API reference\n=============\n\n"
        f"The ``{package}`` package that every notebook imports, module by module, generated from "
        "its docstrings. Each public function names the paper it follows.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toc}\n")}
    for name, ispkg in modules.items():
        # A package only re-exports what its modules define: document those once, in the module.
        members = "   :no-members:\n" if ispkg else ""
        pages[f"api/{name}.rst"] = f"{name}\n{'=' * len(name)}\n\n.. automodule:: {name}\n{members}"
    return pages


def _runs_page(records: list[tuple[str, str, dict]]) -> str:
    rows = []
    for title, doc, record in records:
        if record["executed"] is None:
            rows.append(f"| [{title}]({doc}) | not executed | | | |")
            continue
        took = _duration(record["seconds"]) if record["seconds"] is not None else "?"
        rows.append(f"| [{title}]({doc}) | {record['mode'] or '?'} | "
                    f"{record['executed'].strftime('%Y-%m-%d %H:%M UTC')} | {took} | "
                    f"{record['machine'] or '?'} |")
    return ("# How each lecture was run\n\nThe run whose outputs each lecture page shows: mode, "
            "start (UTC), wall-clock time, machine.\n\n"
            "| lecture | mode | run on | took | machine |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip().replace("|", "/")
    return fallback


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def stage(root: Path, src: Path, executed: list[Path], save_to: Path, execute: str | None,
          findings: Path | None = None, timeout: int = 3600) -> list[tuple[str, str, dict]]:
    """Lay out the site's sources in ``src``; return (title, page, run record) per lecture.

    Executed lectures are looked for in ``executed``. ``execute`` is ``"full"``,
    ``"FAST"`` or None: how to run a lecture without a usable executed copy (the
    run is saved in ``save_to``), or None to publish it without outputs. ``findings`` is the
    findings report (Markdown) to publish, if it exists.
    """
    from mlcourse.files import atomic_write_text
    from mlcourse.notebooks import execute_notebook

    config = root / "site"
    shutil.copy(config / "index.md", src / "index.md")
    records = []
    (src / "lectures").mkdir(parents=True)
    for lecture in sorted((root / "lectures").glob("[0-9][0-9]_*.ipynb")):
        nb = executed_copy(lecture, executed, mode="full" if execute == "full" else None)
        if nb is None and execute:
            print(f"site: running {lecture.name} ({execute} mode) ...", file=sys.stderr, flush=True)
            try:
                nb = execute_notebook(lecture, fast=execute == "FAST", timeout=timeout)
            except Exception as err:  # nbclient's CellExecutionError, a dead kernel, a timeout
                last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
                raise ValueError(f"{lecture} failed to run ({last[0]}); fix it, or build with "
                                 "--no-execute to publish the lectures not yet run without outputs") from err
            atomic_write_text(save_to / lecture.name, nbformat.writes(nb))
        if nb is None:
            nb = nbformat.read(lecture, as_version=4)
        page = f"lectures/{lecture.name}"
        record = run_record(nb)
        nb = without_widgets(nb)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(run_note(nb, page)))
        nbformat.write(nb, src / page)
        records.append((_title(nb, lecture.stem), page, record))
    (src / "labs" / "release").mkdir(parents=True)
    for lab in sorted((root / "labs" / "release").glob("*.ipynb")):
        shutil.copy(lab, src / "labs" / "release" / lab.name)
    _write(src / "runs.md", _runs_page(records))
    if findings is not None and Path(findings).is_file():
        text = Path(findings).read_text(encoding="utf-8")
        if not text.lstrip().startswith("# "):
            text = "# Findings and measured runtimes\n\n" + text
        _write(src / "findings.md", text)
    for name, text in api_pages().items():
        _write(src / name, text)
    return records


# -- checks on the built site ------------------------------------------------------------------

def _site_texts(site: Path):
    """(path, text) for each text file of the site; HTML without tags and entities; notebooks' sources."""
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path.suffix in {".png", ".jpg", ".jpeg", ".gif", ".woff", ".woff2",
                                                 ".ttf", ".eot", ".ico", ".svg", ".pickle"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        elif path.suffix == ".ipynb":
            try:
                text = "\n".join("".join(c.get("source", "")) for c in json.loads(text)["cells"])
            except (ValueError, KeyError, TypeError):
                pass
        yield path, text


def _secret_blocks(source_labs: Path) -> list[str]:
    """The whitespace-normalised text of every solution and hidden-test block in the source labs."""
    from mlcourse.grading import markers

    blocks = []
    for lab in sorted(Path(source_labs).glob("*.ipynb")):
        nb = nbformat.read(lab, as_version=4)
        for cell in nb.cells:
            lines = cell.source.splitlines()
            for region in markers.regions(cell.source, where=f"{lab.name}"):
                body = " ".join(" ".join(lines[region.begin + 1:region.end]).split())
                if len(body) >= _MIN_LEAK:
                    blocks.append(body)
    return blocks


def leaks(site: Path, source_labs: Path) -> list[str]:
    """Every file of ``site`` that shows a solution or a hidden test, with what it shows.

    A file leaks when it holds one of :data:`FORBIDDEN` or, whitespace
    normalised, the body of a solution or hidden-test block of a lab in
    ``source_labs`` (blocks under 40 characters are not looked for).
    """
    blocks = _secret_blocks(source_labs)
    found = []
    for path, text in _site_texts(Path(site)):
        marker = next((m for m in FORBIDDEN if m in text), None)
        if marker:
            found.append(f"{path.relative_to(site)}: contains {marker!r}")
            continue
        flat = " ".join(text.split())
        block = next((b for b in blocks if b in flat), None)
        if block:
            found.append(f"{path.relative_to(site)}: contains a source lab's block {block[:60]!r}...")
    return found


class _Links(HTMLParser):
    """The links, anchors and network resources of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.remote, self.markup_errors = [], set(), [], []
        self._last = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "problematic" in (attrs.get("class") or "") and self._last:
            # docutils' pointer from bad markup to its (hidden) error message: a docstring error
            self.markup_errors.append(self.links.pop())
        self._last = None
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            url = attrs.get(key)
            if not url:
                continue
            scheme = urlsplit(url).scheme
            if scheme in ("http", "https") or url.startswith("//"):
                if tag == "script" or (tag == "link" and "stylesheet" in (attrs.get("rel") or "")):
                    self.remote.append(url)
            elif not scheme:
                self.links.append(url)
                self._last = tag == "a"


def _pages(site: Path) -> dict[Path, _Links]:
    """Every HTML page of the site (not the theme's templates under ``_static/``), parsed."""
    parsed = {}
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.relative_to(site).parts:
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        parsed[page] = parser
    return parsed


def broken_links(site: Path) -> list[str]:
    """Every internal link, image or script of the pages in ``site`` whose target (file or anchor) is missing.

    Also lists pages that load a script or style sheet from the network (the
    site must work offline). Returns messages; empty when all is well. The
    links docutils makes from a markup error to its error message are not
    counted here: :func:`markup_errors` lists them.
    """
    site = Path(site).resolve()
    parsed = _pages(site)
    problems = []
    for page, parser in parsed.items():
        where = page.relative_to(site)
        problems += [f"{where}: loads {url} from the network" for url in parser.remote]
        for url in parser.links:
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site not in target.parents:
                problems.append(f"{where}: broken link {url!r} (no file {target})")
            elif parts.fragment and target in parsed and unquote(parts.fragment) not in parsed[target].ids:
                problems.append(f"{where}: broken link {url!r} (no anchor #{parts.fragment})")
    return problems


def markup_errors(site: Path) -> list[str]:
    """Pages with text that docutils could not parse (shown in red), e.g. ``|x|`` in a docstring."""
    site = Path(site).resolve()
    return [f"{page.relative_to(site)}: markup error (docutils marks it, linking to {url!r})"
            for page, parser in _pages(site).items() for url in parser.markup_errors]


# -- the build ---------------------------------------------------------------------------------

def _sphinx_command(root: Path, src: Path, out: Path) -> list[str]:
    try:
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as err:
        raise ValueError(f"the website generator is not installed ({err.name} is missing): run "
                         "`make site`, or `pip install -e '.[site]'`") from None
    return [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(root / "site"),
            "-d", str(src / ".doctrees"), str(src), str(out)]


def build_site(root: Path, out: Path, executed=None, execute: str | None = "full",
               findings: Path | None = None, timeout: int = 3600) -> Path:
    """Build the course website from the course folder ``root`` into ``out``; return ``out``.

    Parameters
    ----------
    root : Path
        The course folder (holding ``lectures/``, ``labs/``, ``site/``).
    out : Path
        Where the site goes (``build/site``). It is replaced only by a site that
        passed every check; a failed build is left in ``out`` + ``.new``.
    executed : list of Path, optional
        Folders with executed lectures, searched in order; lectures run here
        are saved in the first one. Default: ``build/findings`` (``make
        findings``), then ``build`` (``make run``), and runs are saved in ``build``.
    execute : {"full", "FAST", None}
        How to run a lecture that has no usable executed copy; None publishes it
        without outputs.
    findings : Path, optional
        The findings report of ``make findings`` (default ``build/findings.md``),
        published when it exists.

    Raises
    ------
    ValueError
        If a check fails (a leaked solution or hidden test, a broken internal
        link, a resource from the network) or Sphinx fails.
    """
    if execute not in ("full", "FAST", None):
        raise ValueError(f"execute must be 'full', 'FAST' or None, got {execute!r}")
    root, out = Path(root).resolve(), Path(out).resolve()
    if not (root / "site" / "conf.py").is_file():
        raise ValueError(f"no site configuration at {root / 'site' / 'conf.py'}")
    if executed:
        executed = [Path(p).resolve() for p in executed]
        save_to = executed[0]
    else:  # what `make findings` and `make run` write; the site's own runs go where `make run`'s do
        executed, save_to = [root / "build" / "findings", root / "build"], root / "build"
    src, new = out.with_name(out.name + "-src"), out.with_name(out.name + ".new")
    for folder in (src, new):
        shutil.rmtree(folder, ignore_errors=True)
    src.mkdir(parents=True)
    findings = Path(findings) if findings else root / "build" / "findings.md"
    stage(root, src, executed, save_to, execute, findings=findings, timeout=timeout)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(_sphinx_command(root, src, new), env=env, cwd=root)
    if done.returncode != 0:
        raise ValueError(f"sphinx-build failed (exit code {done.returncode}); its messages are above")
    for message in markup_errors(new):
        print(f"site: warning: {message}", file=sys.stderr)
    problems = leaks(new, root / "labs" / "source") + broken_links(new)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise ValueError(f"the site in {new} fails {len(problems)} check(s); not published:\n  {shown}")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(new, out)
    return out


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _site(args) -> int:
    from mlcourse.cli import course_root

    root = course_root(args.root)
    started = time.monotonic()
    execute = None if args.no_execute else ("FAST" if args.fast else "full")
    out = build_site(root, root / args.out, executed=args.executed or None, execute=execute,
                     timeout=args.timeout)
    print(f"site: {out / 'index.html'} ({_size(out) / 1e6:.1f} MB, "
          f"built in {time.monotonic() - started:.0f} s)")
    return 0


def add_cli(sub) -> None:
    """Register ``mlcourse site``."""
    site = sub.add_parser("site", help="build the course website (static HTML) into build/site")
    site.add_argument("--root", type=Path, help="the course folder (default: here or a parent)")
    site.add_argument("--out", default="build/site", help="output folder, relative to the root")
    site.add_argument("--executed", type=Path, action="append",
                      help="folder with executed lectures (repeatable; default: build/findings, build)")
    site.add_argument("--fast", action="store_true",
                      help="run lectures that have no executed copy in FAST mode (a quick preview)")
    site.add_argument("--no-execute", action="store_true",
                      help="publish lectures that have no executed copy without outputs")
    site.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    site.set_defaults(func=_site)
