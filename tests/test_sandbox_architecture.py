"""The sandbox keeps one direction of imports and changes statuses only in transition functions.

Layers (portal/sandbox/README.md, "Inside"): hosted > resources > billing > objects > core,
enforced by the import-linter contracts in pyproject.toml. A status changes only inside a
function named ``transition`` or ending in ``_transition`` (one per object type, next to its
constructor in ``objects/`` or ``billing/``); no module imports inside a function body.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "portal" / "sandbox"
LAYERS_CONTRACT = "Sandbox layers: hosted > resources > billing > objects > core"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's lint-imports against the project in ``cwd``."""
    executable = Path(sys.executable).with_name("lint-imports")
    assert executable.exists(), "import-linter is part of the test extra: pip install -e '.[test]'"
    return subprocess.run(
        [str(executable), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env={"PATH": str(executable.parent), "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_are_kept():
    """Follows the layer rules in portal/sandbox/README.md; lint-imports passes on the repo."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS_CONTRACT} KEPT" in result.stdout
    assert "The sandbox imports nothing from the rest of portal KEPT" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """A core module importing a resource module makes lint-imports fail on the layers."""
    shutil.copytree(
        ROOT / "portal",
        tmp_path / "portal",
        ignore=shutil.ignore_patterns("__pycache__", "migrations", "*.db"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ids = tmp_path / "portal" / "sandbox" / "core" / "ids.py"
    ids.write_text(ids.read_text() + "\nfrom ..resources import customers  # noqa: E402,F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    assert f"{LAYERS_CONTRACT} BROKEN" in result.stdout
    assert "portal.sandbox.core.ids -> portal.sandbox.resources.customers" in result.stdout


def sandbox_modules() -> list[tuple[Path, ast.Module]]:
    """Return every sandbox module with its syntax tree."""
    paths = sorted(SANDBOX.rglob("*.py"))
    assert len(paths) > 60
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in paths]


def is_transition(name: str) -> bool:
    """Tell whether a function is an object's transition function, by the naming convention."""
    return name == "transition" or name.endswith("_transition")


def status_changes(tree: ast.Module) -> list[tuple[int, str | None]]:
    """Return (line, enclosing function) of every write to a ``status`` key in a module."""
    found: list[tuple[int, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            inner = child.name if is_function else None
            if isinstance(child, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.slice, ast.Constant)
                        and target.slice.value == "status"
                    ):
                        found.append((child.lineno, function))
            # Constructors give the initial status in the body they build (a dict literal);
            # a later change is an assignment or update(status=...).
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "update"
                and any(k.arg == "status" for k in child.keywords)
            ):
                found.append((child.lineno, function))
            visit(child, inner or function)

    visit(tree, None)
    return found


def test_statuses_change_only_in_transition_functions():
    """Every ``obj["status"] = ...`` (or update(status=...)) sits in a transition function."""
    outside = []
    inside = 0
    for path, tree in sandbox_modules():
        for line, function in status_changes(tree):
            if function is not None and is_transition(function):
                inside += 1
            else:
                outside.append(f"{path.relative_to(ROOT)}:{line} in {function}")
    assert outside == []
    # payment and setup intents, invoices and their payments, subscriptions, checkout
    # sessions, test clocks, meters, webhook endpoints
    assert inside >= 9


def test_the_status_scan_sees_a_stray_assignment():
    """The scan above reports an assignment outside a transition function (it can fail)."""
    tree = ast.parse(
        "def settle(invoice):\n"
        "    invoice['status'] = 'paid'\n"
        "def transition(invoice, status):\n"
        "    invoice['status'] = status\n"
        "def cancel(pi):\n"
        "    pi.update(status='canceled')\n"
    )
    assert status_changes(tree) == [(2, "settle"), (4, "transition"), (6, "cancel")]


def function_level_imports(tree: ast.Module) -> list[int]:
    """Return the lines of imports inside a function or method body."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines += [
                inner.lineno
                for inner in ast.walk(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            ]
    return lines


def test_no_import_inside_a_function():
    """Imports sit at module level only, so the import graph is the whole truth."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path, tree in sandbox_modules()
        for line in function_level_imports(tree)
    ]
    assert found == []
    assert function_level_imports(ast.parse("def f():\n    from . import x\n")) == [2]


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_sandbox_imports_nothing_from_the_portal(kind):
    """No sandbox module names a portal module outside portal.sandbox (namespace packages too)."""
    escapes = []
    for path, tree in sandbox_modules():
        package = list(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom | ast.Import):
                continue
            if kind == "absolute":
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                    else [alias.name for alias in getattr(node, "names", [])]
                    if isinstance(node, ast.Import)
                    else []
                )
                escapes += [
                    f"{path}:{node.lineno}"
                    for name in names
                    if name.split(".")[0] == "portal" and not name.startswith("portal.sandbox")
                ]
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                if base[:2] != ["portal", "sandbox"]:
                    escapes.append(f"{path}:{node.lineno}")
    assert escapes == []
