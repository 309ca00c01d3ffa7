"""The package's layers: imports run down, nothing imports the demo, domain leaves it be."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import border_exchange

PACKAGE = Path(border_exchange.__file__).parent

LAYERS = (
    "errors",
    "domain",
    "adapters",
    "services",
    "web",
    "interpreter",
    "bootstrap",
    "cli",
    "demo",
)
"""From the bottom up: a module may import only from layers below its own (and its own)."""

ANYONE = {"", "_native"}
"""What every layer may import: the package root (its version) and the compiled fast path."""


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__"
    )


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every package module ``path`` imports, anywhere in it (functions included), by line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name == "border_exchange" or name.startswith("border_exchange."):
                yield node.lineno, name


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_import_runs_down_the_layers() -> None:
    upward = []
    for path in _sources():
        mine = _layer(_module(path))
        if mine not in LAYERS:
            continue  # __main__ and the package root sit above and beside everything
        for line, name in _imports(path):
            theirs = _layer(name)
            if theirs in ANYONE or theirs not in LAYERS:
                continue
            if LAYERS.index(theirs) > LAYERS.index(mine):
                upward.append(f"{_module(path)}:{line} imports {name}")
    assert upward == []


def test_no_module_outside_the_demo_imports_it() -> None:
    demo_users = [
        f"{_module(path)}:{line} imports {name}"
        for path in _sources()
        if _layer(_module(path)) != "demo"
        for line, name in _imports(path)
        if _layer(name) == "demo" or name == "border_exchange.demo"
    ]
    assert demo_users == []


def test_the_command_line_reaches_the_demo_only_by_its_name() -> None:
    """The ``demo`` subcommand is listed by module name; nothing else mentions the package."""
    mentions = [
        _module(path)
        for path in _sources()
        if _layer(_module(path)) != "demo" and "border_exchange.demo" in path.read_text("utf-8")
    ]
    assert mentions == ["border_exchange.cli.main"]
    from border_exchange.cli.main import COMMANDS

    assert "border_exchange.demo.cli" in COMMANDS


def test_domain_leaves_the_interpreter_alone() -> None:
    """Pure logic changes no global state of the process: no collector, no switch interval."""
    tuning = []
    for path in sorted((PACKAGE / "domain").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name == "gc" for a in node.names):
                tuning.append(f"{_module(path)}:{node.lineno} imports gc")
            if isinstance(node, ast.Attribute) and node.attr in {"setswitchinterval", "freeze"}:
                tuning.append(f"{_module(path)}:{node.lineno} calls {node.attr}")
    assert tuning == []
