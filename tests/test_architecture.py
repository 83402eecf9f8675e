"""The import rules of README's Layout hold: import-linter's contracts plus what it cannot see."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Names a service must not take from flask: they belong to a request, and services get
# what they need as arguments instead.
REQUEST_NAMES = {"request", "session", "flash", "g"}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the pyproject.toml in `cwd`, with no cache left behind."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def copy_of_project(tmp_path: Path) -> Path:
    """Return a copy of the package and its pyproject.toml, to break on purpose."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(ROOT / "portal", copy / "portal",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    return copy


def request_imports(services: Path) -> list[str]:
    """Return 'file: name' for every request-bound flask name or app factory a service imports."""
    found = []
    for path in sorted(services.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                if node.module == "flask":
                    found += [f"{path.name}: flask.{alias.name}" for alias in node.names
                              if alias.name in REQUEST_NAMES]
                elif node.module == "portal":
                    found += [f"{path.name}: portal.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [f"{path.name}: {alias.name}" for alias in node.names
                          if alias.name in {"portal", "flask.globals"}]
    return found


def test_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    for contract in ("only through portal.embedded_sandbox", "Services never import blueprints",
                     "Models import no services"):
        assert f"{contract}" in result.stdout


@pytest.mark.parametrize(("module", "violation", "contract"), [
    ("services/invoices.py", "import portal.billing.views",
     "Services never import blueprints, the CLI, the worker or the sandbox seam BROKEN"),
    ("cli.py", "import portal.sandbox.cli",
     "The portal reaches portal.sandbox only through portal.embedded_sandbox BROKEN"),
    ("models/audit.py", "import portal.services.money", "Models import no services BROKEN"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, violation, contract):
    copy = copy_of_project(tmp_path)
    target = copy / "portal" / module
    target.write_text(target.read_text() + f"\n{violation}  # deliberate violation\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert contract in result.stdout
    importer = "portal." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {violation.removeprefix('import ')}" in result.stdout
    assert "1 broken" in result.stdout


def test_services_take_nothing_from_the_request_or_the_factory():
    assert request_imports(ROOT / "portal" / "services") == []


def test_request_imports_are_found(tmp_path):
    services = copy_of_project(tmp_path) / "portal" / "services"
    (services / "pdf.py").write_text(
        "from flask import current_app, flash, request\nfrom portal import create_app\n")
    assert request_imports(services) == [
        "pdf.py: flask.flash", "pdf.py: flask.request", "pdf.py: portal.create_app"]


def stripe_importers(package: Path) -> list[str]:
    """Return the portal modules (the sandbox aside) that import the stripe SDK."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if "sandbox" in path.relative_to(package).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            if any(name == "stripe" or name.startswith("stripe.") for name in names):
                found.append(str(path.relative_to(package)))
    return found


def test_only_stripe_client_imports_stripe(tmp_path):
    assert stripe_importers(ROOT / "portal") == ["services/stripe_client.py"]
    copy = copy_of_project(tmp_path) / "portal"
    (copy / "billing" / "outcomes.py").write_text("from stripe import CardError\n")
    assert stripe_importers(copy) == ["billing/outcomes.py", "services/stripe_client.py"]
