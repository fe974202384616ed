"""The house keeps its plan: subpackages in layers, each importing only the layers below it,
and no import circle anywhere in probe/ (imports inside function bodies included)."""

from __future__ import annotations

import ast
from pathlib import Path

PROBE = Path(__file__).resolve().parents[1] / "probe"

# Bottom to top. A module may import its own subpackage and any layer listed before its own;
# layers on one line are siblings and may not import each other. probe/__init__.py (the public
# API) sits above them all.
LAYERS = [
    ("core",),
    ("render",),
    ("engine",),
    ("models",),
    ("distributed",),
    ("data",),
    ("overfit",),
    ("diagnosis",),
    ("shifts",),
    ("train",),
    ("evals", "attribution", "packs"),
    ("cases",),
    ("widgets", "demo"),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PROBE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every probe module this file imports, at the top or inside a function."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "probe"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "probe":
                continue
            for a in node.names:  # `from probe.x import y`: y may be a module of its own
                sub = f"{target}.{a.name}"
                out.add(sub if _exists(sub) else target)
    return out - {mod}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PROBE / rel).with_suffix(".py").exists() or (PROBE / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PROBE.rglob("*.py")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PROBE / parts[1]).is_dir() else None


def test_every_subpackage_has_a_layer():
    packages = {p.name for p in PROBE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(RANK), "a new subpackage needs its place in LAYERS (and in the README map)"
    loose = sorted(p.name for p in PROBE.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules belong in a layer's subpackage, not beside them: {loose}"


def test_layers_import_only_layers_below():
    wrong = []
    for mod, targets in _graph().items():
        here = _layer(mod)
        if here is None:
            continue  # probe/__init__.py: the public API may import every layer
        for t in targets:
            there = _layer(t)
            if t == "probe":
                wrong.append(f"{mod} imports the package probe (the public API above every layer)")
            elif there is not None and there != here and RANK[there] >= RANK[here]:
                wrong.append(f"{mod} ({here}) imports {t} ({there})")
    assert wrong == []


def test_no_import_circles():
    graph = _graph()
    graph = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    # Tarjan's strongly connected components: any with 2+ modules is a circle
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above could pass by seeing nothing: build a package with a circle through a
    function body and an upward import, and make sure both are caught."""
    pkg = tmp_path / "probe"
    for layer in ("core", "render"):
        (pkg / layer).mkdir(parents=True)
        (pkg / layer / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from ..render import b\n")
    (pkg / "render" / "b.py").write_text("from ..core.a import f\n")
    monkeypatch.setattr(__import__(__name__), "PROBE", pkg)
    graph = _graph()
    assert graph["probe.core.a"] == {"probe.render.b"}
    assert graph["probe.render.b"] == {"probe.core.a"}
    try:
        test_no_import_circles()
    except AssertionError:
        pass
    else:
        raise AssertionError("a circle through a function body went unseen")
    try:
        test_layers_import_only_layers_below()
    except AssertionError:
        pass
    else:
        raise AssertionError("core importing render went unseen")


def _name_checks(tree) -> list[int]:
    """Lines comparing ``type(x).__name__`` (or ``x.__class__.__name__``) with a string."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "__name__" and (
                    isinstance(s.value, ast.Call) and getattr(s.value.func, "id", "") == "type"
                    or isinstance(s.value, ast.Attribute) and s.value.attr == "__class__") for s in sides) \
                    and any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides):
                found.append(node.lineno)
    return found


def test_no_dispatch_on_a_type_name():
    """A result is told by isinstance or the registry, never by its class's name: a class of
    another package with the same name would pass, a subclass would not."""
    wrong = [f"{p.relative_to(PROBE.parent)}:{n}" for p in sorted(PROBE.rglob("*.py"))
             for n in _name_checks(ast.parse(p.read_text(encoding="utf-8")))]
    assert wrong == []
    assert _name_checks(ast.parse('if type(r).__name__ == "Diagnosis": pass\nr.__class__.__name__ != "X"')) == [1, 2]
