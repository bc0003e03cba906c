"""The line between the tool and the article: reportgen knows no article by name, and never
imports torch, numpy or an article's package in the build's own process."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPORTGEN = Path(__file__).resolve().parents[2] / "reportgen"
HEAVY = {"torch", "numpy", "matplotlib"}
# the only places a heavy library may be imported: inside these functions, which run in the
# runner's own process and only when the runner uses that library
RUNNER_SIDE = {("context.py", "select_device"): "torch", ("context.py", "save_figure"): "matplotlib"}


def modules() -> list[Path]:
    return sorted(REPORTGEN.rglob("*.py"))


def imports(tree: ast.AST) -> list[tuple[str, str]]:
    """(top-level module name, enclosing function or "") of every import in a module."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            scope = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module.split(".")[0], function))
            visit(child, scope)

    visit(tree, "")
    return found


def test_reportgen_imports_no_article_package_and_no_heavy_library() -> None:
    for path in modules():
        for name, function in imports(ast.parse(path.read_text(encoding="utf-8"))):
            assert name != "runners", f"{path.name} imports the article's package"
            if name in HEAVY:
                assert RUNNER_SIDE.get((path.name, function)) == name, f"{path.name}: import {name} in {function or 'the module'}"


def test_reportgen_names_no_path_of_an_article() -> None:
    """String literals hold no path into an article (runners/…, docs/x.md of this site); docstrings
    may name this site's defaults as examples."""
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert "runners/" not in node.value and "runners." not in node.value, (path.name, node.value)
                assert "draft-00" not in node.value, (path.name, node.value)


def test_importing_the_plugin_and_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, reportgen.cli, reportgen.mkdocs_plugin, reportgen.pipeline, reportgen.site;"
        f"print(sorted(m for m in {sorted(HEAVY | {'runners'})!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
