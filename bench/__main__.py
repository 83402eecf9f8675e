"""Run every benchmark program in bench/ and write bench/REPORT.md.

    .venv/bin/python -m bench [--only pages,soak] [--skip invoices] [--database-url URL]
                              [--redis-url URL] [--args PROGRAM="--flag value" ...]
                              [--output bench/REPORT.md]

A program takes part by defining `figures(argv) -> list[Figure]` (bench/harness.py) and,
optionally, `REPORT_RUNS`, the command lines the report runs it with (default: one run with
no arguments). Each run happens in a fresh Python process, so programs never share an app,
a database or environment variables. See bench/README.md for the contract.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NOT_PROGRAMS = {"__main__", "__init__", "harness"}


def programs() -> list[str]:
    """Return the bench modules that define figures(), by name, in alphabetical order."""
    found = []
    for path in sorted(BENCH.glob("*.py")):
        if path.stem in NOT_PROGRAMS:
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.FunctionDef) and node.name == "figures"
               for node in tree.body):
            found.append(path.stem)
    return found


def report_runs(name: str) -> list[list[str]]:
    """Return the module's REPORT_RUNS (a literal), or one run with no arguments."""
    tree = ast.parse((BENCH / f"{name}.py").read_text())
    for node in tree.body:
        targets = [target.id for target in getattr(node, "targets", [])
                   if isinstance(target, ast.Name)]
        if "REPORT_RUNS" in targets:
            return ast.literal_eval(node.value)
    return [[]]


def run_one(name: str, argv: list[str], output: Path) -> None:
    """Import one program and write its figures as JSON (runs in the child process)."""
    sys.path[:0] = [str(BENCH), str(ROOT)]
    module = __import__(name)
    found = module.figures(argv)
    output.write_text(json.dumps([dataclasses.asdict(figure) for figure in found]))


def machine() -> dict[str, str]:
    """Describe where the figures were measured."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "unknown"
    return {"cores": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load_at_start": load}


def git_commit() -> str:
    """Return the short commit the figures were measured on (marked when files differ)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain",
                                                         "--untracked-files=no") else "")


def met_label(figure: dict) -> str:
    """Return 'yes', 'no' or '-' for a figure record."""
    if not figure["target"]:
        return "-"
    op, bound = figure["target"].split()
    value, bound = figure["value"], float(bound)
    return "yes" if {">=": value >= bound, ">": value > bound, "<=": value <= bound,
                     "<": value < bound, "==": value == bound}[op] else "no"


def render(results: list[dict], about: dict) -> str:
    """Return REPORT.md's text."""
    lines = [
        "# Benchmark report", "",
        "Written by `python -m bench` (see bench/README.md); every figure is measured against "
        "a baseline taken in the same run on the same machine.", "",
        f"- Date: {about['date']}",
        f"- Git commit: {about['commit']}",
        f"- Machine: {about['machine']['cores']} cores, {about['machine']['cpu']}; "
        f"{about['machine']['system']}; Python {about['machine']['python']}; "
        f"load average at start {about['machine']['load_at_start']}",
        f"- Command: `{about['command']}`", "",
    ]
    for result in results:
        lines.append(f"## {result['program']} {' '.join(result['argv'])}".rstrip())
        lines.append("")
        command = " ".join([f".venv/bin/python bench/{result['program']}.py",
                            *map(shlex.quote, result["argv"])])
        lines.append(f"`{command}` took {result['seconds']:.0f} s.")
        lines.append("")
        if result["error"]:
            lines += [f"**Failed:** {result['error']}", ""]
            continue
        lines += ["| Figure | Value | Unit | Target | Met | Measured against |",
                  "| --- | ---: | --- | --- | --- | --- |"]
        for figure in result["figures"]:
            value = figure["value"]
            shown = f"{value:,.2f}" if isinstance(value, float) and not value.is_integer() \
                else f"{value:,.0f}"
            lines.append(f"| {figure['name']} | {shown} | {figure['unit']} | "
                         f"{figure['target'] or '-'} | {met_label(figure)} | "
                         f"{figure['note'] or '-'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--run-one"]:
        # The child process: the program's own arguments follow, untouched.
        run_one(sys.argv[2], sys.argv[4:], Path(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated programs to run")
    parser.add_argument("--skip", default="", help="comma-separated programs to leave out")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="PostgreSQL for programs that need one (soak); its tables are "
                             "DROPPED (default $BENCH_DATABASE_URL)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"),
                        help="Redis for gunicorn's shared limits and RQ (default "
                             "$BENCH_REDIS_URL)")
    parser.add_argument("--args", action="append", default=[], metavar='PROGRAM="ARGS"',
                        help="replace a program's report runs by one run with these arguments")
    parser.add_argument("--output", type=Path, default=BENCH / "REPORT.md")
    args = parser.parse_args()

    chosen = programs()
    if args.only:
        chosen = [name for name in chosen if name in args.only.split(",")]
    chosen = [name for name in chosen if name not in args.skip.split(",")]
    overrides = {}
    for item in args.args:
        name, _, value = item.partition("=")
        overrides[name] = [shlex.split(value)]
    env = dict(os.environ)
    if args.database_url:
        env["BENCH_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["BENCH_REDIS_URL"] = args.redis_url
    about = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
             "machine": machine(), "command": shlex.join(["python", "-m", "bench",
                                                          *sys.argv[1:]])}
    results = []
    for name in chosen:
        for argv in overrides.get(name) or report_runs(name):
            print(f"== {name} {' '.join(argv)}", flush=True)
            with tempfile.NamedTemporaryFile(suffix=".json") as handle:
                start = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "bench", "--run-one", name,
                                       handle.name, *argv], cwd=ROOT, env=env, check=False)
                seconds = time.monotonic() - start
                text = Path(handle.name).read_text()
            error = None if done.returncode == 0 and text else f"exit code {done.returncode}"
            results.append({"program": name, "argv": argv, "seconds": seconds, "error": error,
                            "figures": json.loads(text) if text else []})
    args.output.write_text(render(results, about) + "\n")
    print(f"wrote {args.output}")
    failed = [r["program"] for r in results if r["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
