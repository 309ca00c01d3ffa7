"""Run every benchmark of ``bench/`` and write ``docs/benchmarks.md``.

Run: ``make bench`` (or ``.venv/bin/python bench/run_all.py [--only NAME] [--timeout S]``).

Each ``bench/bench_*.py`` runs alone, one after the other, as a subprocess with a
time limit; a benchmark that fails or runs out of time is recorded as such and
the others still run. The page holds the machine, each benchmark's command, its
printed output as it was, a table of the lines that state a ratio or a goal, and
how to reproduce the figures. Benchmarks that need Kafka start it themselves.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from border_exchange.adapters.kafka_launcher import KAFKA_VERSION  # noqa: E402

BENCH_DIR = ROOT / "bench"
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
DEFAULT_TIMEOUT = 1200.0
LIBRARIES = ("aiokafka", "fastavro", "PyNaCl", "cryptography", "pydantic")
KEY_LINE = re.compile(r"\bratio\b|\bgoal\b|\bmissed\b|\d(?:\.\d+)?x\b", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    """What one benchmark printed, how it ended and how long it took."""

    name: str
    summary: str
    command: str
    status: str
    seconds: float
    output: str

    @property
    def key_lines(self) -> list[str]:
        """The printed lines that state a ratio, a speed-up or a goal."""
        return [line.strip() for line in self.output.splitlines() if KEY_LINE.search(line)]


def summary_of(script: Path) -> str:
    """The first line of the script's docstring."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else script.stem


def scripts(only: list[str] | None) -> list[Path]:
    """The benchmark scripts to run, by name, optionally only some of them."""
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in only}
        found = [p for p in found if p.stem.removeprefix("bench_") in wanted]
    return found


def _public(text: str) -> str:
    """Text with this checkout's location and the home directory written relatively."""
    return (
        text.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".").replace(str(Path.home()), "~")
    )


def run(script: Path, timeout: float) -> Result:
    """Run one benchmark to its end, its time limit or its failure."""
    command = f".venv/bin/python bench/{script.name}"
    print(f"== {command}", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        failed = done.returncode != 0 and done.stderr.strip()
        output = done.stdout + (f"\n[stderr]\n{done.stderr}" if failed else "")
        status = "ok" if done.returncode == 0 else f"exit code {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        output = partial
        status = f"stopped after the {timeout:.0f} s limit"
    seconds = time.perf_counter() - started
    output = _public(output.rstrip())
    print(output, flush=True)
    print(f"-- {status} in {seconds:.0f} s", flush=True)
    return Result(script.stem, summary_of(script), command, status, seconds, output)


def _first(path: Path, key: str) -> str | None:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def machine() -> list[tuple[str, str]]:
    """The facts about this machine and run that the figures depend on."""
    cpu = _first(Path("/proc/cpuinfo"), "model name") or platform.processor() or "unknown"
    memory = _first(Path("/proc/meminfo"), "MemTotal")
    memory_text = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB" if memory else "unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return [
        ("CPU", cpu),
        ("cores", f"{usable} usable of {os.cpu_count()}"),
        ("memory", memory_text),
        ("system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Kafka", f"Apache Kafka {KAFKA_VERSION} (official jars, KRaft, Java {_java()})"),
        ("libraries", ", ".join(versions)),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("commit", commit or "unknown"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def _java() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    match = re.search(r'version "([^"]+)"', done.stderr)
    return match.group(1) if match else "unknown"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(results: list[Result], facts: list[tuple[str, str]], timeout: float) -> str:
    """The page: machine, summary table, each benchmark's output, how to reproduce."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`), which runs every `bench/bench_*.py`",
        "one after the other and writes this page. The figures are those printed by the",
        "last run on the machine below; they change with the machine and its load, the",
        "ratios much less than the absolute rates. Do not edit: run it again.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {_cell(v)} |" for k, v in facts),
        "",
        "## Summary",
        "",
        "Every line a benchmark printed that states a ratio, a speed-up or a goal.",
        "",
        "A status other than ok is the script's exit code: it failed, or (as its docstring",
        "says) it missed its goal.",
        "",
        "| benchmark | status | time | key figures |",
        "|---|---|---|---|",
    ]
    for r in results:
        figures = "<br>".join(_cell(line) for line in r.key_lines) or "(see output)"
        lines.append(f"| `{r.name}` | {r.status} | {r.seconds:.0f} s | {figures} |")
    for r in results:
        lines += [
            "",
            f"## {r.name}",
            "",
            r.summary,
            "",
            f"Command: `{r.command}` — {r.status}, {r.seconds:.0f} s.",
            "",
            "```text",
            r.output or "(no output)",
            "```",
        ]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench                                    # every benchmark, rewrites this page",
        ".venv/bin/python bench/run_all.py --only policy contract   # some of them",
        ".venv/bin/python bench/bench_policy.py        # one, printing only",
        "```",
        "",
        f"Each benchmark has {timeout:.0f} s; one that fails or runs out of time is reported",
        "above and the others still run. Benchmarks that need Kafka start a local cluster",
        "from the official jars themselves (Java 17 and Maven, as for the tests). Run them",
        "on an otherwise idle machine: the rates are per core and sensitive to load.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the page, exit 1 when any benchmark did not finish well."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", help="benchmark names, e.g. policy contract")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds each")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="page to write")
    args = parser.parse_args(argv)
    chosen = scripts(args.only)
    if not chosen:
        print("no benchmark matches", file=sys.stderr)
        return 2
    facts = machine()
    results = [run(script, args.timeout) for script in chosen]
    args.out.write_text(render(results, facts, args.timeout), encoding="utf-8")
    print(f"wrote {_public(str(args.out))}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
