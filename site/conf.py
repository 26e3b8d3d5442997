"""Sphinx configuration of the course website (``make site``; see ``mlcourse/site.py``).

The builder lays the pages out in ``build/site-src`` (executed lectures, the labs'
student versions, generated API pages, the findings) and runs
``sphinx-build -c site build/site-src build/site``: this file is the configuration,
the content comes from the course. Everything the site needs is served from its
own folder (MathJax included), so it works offline and from ``file://``.
"""

import importlib.util
import shutil
from pathlib import Path

project = "mlcourse: predicting TF binding with CNNs, and interpreting deep models"
author = "the mlcourse authors"
copyright = "the mlcourse authors, MIT licence"

extensions = [
    "myst_nb",  # notebooks and Markdown (MyST)
    "sphinx.ext.autodoc",  # the API reference, from the package's docstrings
    "sphinx.ext.napoleon",  # numpy-style docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.githubpages",  # writes .nojekyll, so GitHub Pages serves _static/
]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_static_path = ["_static"]
html_css_files = ["course.css"]

# Notebooks arrive executed (mlcourse.site): never execute them again here.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # widget JavaScript would come from a CDN; mlcourse.site replaces widget views
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "sphinx_book_theme"
html_title = "mlcourse"
html_last_updated_fmt = "%Y-%m-%d %H:%M UTC"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    # The lectures are one level deep: a one-level, collapsed navigation tree is the same
    # sidebar, built in 0.8 s instead of 3.5 s for the whole site.
    "max_navbar_depth": 1,
    "collapse_navbar": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_prev_next": True,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # the search field is in the sidebar already
}

# MathJax 3 from the sphinx-mathjax-offline wheel, only the parts a TeX -> HTML page loads
# (about 3 MB of its 24 MB), copied into _static/mathjax.
mathjax_path = "mathjax/tex-chtml.js"
MATHJAX_PARTS = ["tex-chtml.js", "input/tex/extensions", "output/chtml", "ui"]


def _copy_mathjax(app, exc):
    if exc is not None:
        return
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("MathJax is missing: pip install -e '.[site]' (sphinx-mathjax-offline)")
    source = Path(spec.origin).parent / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app):
    app.connect("build-finished", _copy_mathjax)
