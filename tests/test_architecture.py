"""The house's floors: the import-linter contracts of pyproject.toml hold, and no module imports
itself back through a chain of imports that run, imports inside functions included
(docs/architecture.md).  Imports under ``if TYPE_CHECKING:`` never run, so they make no circle;
the floor contracts count them all the same."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]

# Circles the activations engineer is removing now (issue 12, item 5): listed by their modules
# so no new circle can hide among them.  Delete an entry once it is gone (the test says when).
BEING_FIXED: set[frozenset[str]] = set()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # grimp reads every import statement, those inside functions too.
    return grimp.build_graph("actlab", cache_dir=None, exclude_type_checking_imports=True)


def circles(graph: grimp.ImportGraph) -> dict[frozenset[str], list[str]]:
    """Each set of modules that import one another in a circle, with one circle as a chain."""
    found: dict[frozenset[str], list[str]] = {}
    for a in sorted(graph.modules):
        for b in sorted(graph.find_modules_directly_imported_by(a)):
            back = graph.find_shortest_chain(importer=b, imported=a)
            if back is None:
                continue
            # The circle's members: every module on some circle through a.
            members = frozenset(m for m in graph.modules
                                if m == a or (graph.chain_exists(importer=a, imported=m)
                                              and graph.chain_exists(importer=m, imported=a)))
            found.setdefault(members, [a, *back])
    return found


def test_circle_finder_sees_a_circle_through_a_function_level_import() -> None:
    g = grimp.ImportGraph()
    for m in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        g.add_module(m)
    g.add_import(importer="pkg.a", imported="pkg.b")
    g.add_import(importer="pkg.b", imported="pkg.c")
    g.add_import(importer="pkg.c", imported="pkg.a")  # e.g. inside a function
    assert circles(g) == {frozenset({"pkg.a", "pkg.b", "pkg.c"}): ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]}
    g.remove_import(importer="pkg.c", imported="pkg.a")
    assert circles(g) == {}


def test_function_level_imports_are_in_the_graph(graph: grimp.ImportGraph) -> None:
    # sweep.backends.local imports the Ray backend inside run_sweep only (Ray is optional).
    assert "actlab.sweep.backends.ray" in graph.find_modules_directly_imported_by("actlab.sweep.backends.local")


def test_no_import_circle(graph: grimp.ImportGraph) -> None:
    found = circles(graph)
    new = {k: v for k, v in found.items() if k not in BEING_FIXED}
    assert not new, "import circles: " + "; ".join(" -> ".join(chain) for chain in new.values())
    gone = BEING_FIXED - set(found)
    assert not gone, f"these circles are gone; delete them from BEING_FIXED: {sorted(map(sorted, gone))}"


def test_root_helpers_are_leaves(graph: grimp.ImportGraph) -> None:
    # actlab._jit and every other private root module (actlab._*) sit under every floor, so any
    # floor may use them: they import no actlab module but one another.
    # (actlab.__main__, `python -m actlab`, is no helper: the top floor, above the CLI it runs)
    helpers = {m for m in graph.modules if m.count(".") == 1 and m.split(".")[1].startswith("_")
               and not m.split(".")[1].startswith("__")}
    assert "actlab._jit" in helpers
    for m in sorted(helpers):
        assert graph.find_modules_directly_imported_by(m) <= helpers, (m, graph.find_modules_directly_imported_by(m))


def test_import_linter_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 broken" in out
