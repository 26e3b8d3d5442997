"""The package's layers: no module imports one from a higher layer (lazy imports inside functions included).

From the ground up: configuration, DNA, motifs, datasets, models, training,
interpretation, plotting, widgets, and the tools that run notebooks and labs.
Inside ``interpret`` the shared helpers (scoring, features, engines,
activations) sit below the methods, and the registry and comparison on top.
"""

import ast
from pathlib import Path

import pytest

import mlcourse

PACKAGE = Path(mlcourse.__file__).parent

LAYERS = [
    ["config", "files", "findings"],
    ["dna"],
    ["motifs"],
    ["datasets"],
    ["models"],
    ["train", "baselines", "benchmark"],
    ["interpret", "interpret.scoring", "interpret.features", "interpret.activations", "interpret.engines"],
    ["interpret.ism", "interpret.sis", "interpret.backprop", "interpret.cam", "interpret.paths",
     "interpret.surrogate", "interpret.maximize", "interpret.filters", "interpret.cluster",
     "interpret.adversarial", "interpret.variants", "interpret.grammar", "interpret.modisco",
     "interpret.sanity"],
    ["interpret.methods", "interpret.compare"],
    ["plot"],
    ["widgets"],
    ["notebooks", "grading", "site", "cli", "numba_cache"],
]


def layer_of(module: str) -> int:
    """The layer of a dotted module name below ``mlcourse`` (the longest listed prefix decides)."""
    best = None
    for level, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (level, name)
    if best is None:
        raise AssertionError(f"mlcourse.{module} is in no layer: add it to LAYERS")
    return best[0]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:  # the top-level __init__ hands names on and sits above everything
            yield ".".join(parts), path


def imports(module: str, path: Path):
    """Every ``mlcourse`` module that ``module`` imports, anywhere in the file."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(["mlcourse", *package[:len(package) - node.level + 1]])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("mlcourse."):
                yield name.removeprefix("mlcourse."), node.lineno


def known(name: str) -> bool:
    """True for a name that is a module or package of mlcourse (not a function imported from one)."""
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_module_imports_a_higher_layer(module, path):
    own = layer_of(module)
    upward = [f"line {line}: mlcourse.{name} (layer {layer_of(name)})"
              for name, line in imports(module, path) if known(name) and layer_of(name) > own]
    assert not upward, f"mlcourse.{module} (layer {own}) imports upwards: " + "; ".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The test itself can fail: an import of widgets from dna is reported."""
    fake = tmp_path / "dna.py"
    fake.write_text("def f():\n    from mlcourse import widgets\n")
    found = [name for name, _ in imports("dna", fake) if known(name)]
    assert "widgets" in found and layer_of("widgets") > layer_of("dna")
