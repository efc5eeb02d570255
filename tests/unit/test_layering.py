"""DESIGN.md's layering, enforced: a layer imports only lower layers; L1 packages are
independent of each other; the CLI loads nothing heavy at start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "xenlite"

LAYERS = {
    "base": 0,
    "config": 1,
    "xenstore": 1,
    "rpc": 1,
    "guestkit": 2,
    "qemu": 2,
    "host": 2,
    "boot": 2,
    "domain": 3,
    "provision": 3,
    "daemon": 4,
    "api": 5,
    "cli": 5,
}
# Same-layer edges that are allowed, each with its reason. The guest kit's boot harness needs
# the accelerator probe; qemu never imports guestkit, so there is no cycle.
# The bootloader reads qcow2 and other formats through QEMU's own block layer (qemu.nbd).
SAME_LAYER_ALLOWED = {("guestkit", "qemu"), ("boot", "qemu")}
# What the CLI may import at module level (DESIGN.md: "cli imports only base, config, rpc").
CLI_MODULE_LEVEL = {"base", "config", "rpc", "cli"}
# What a CLI module may import inside a function besides, each with its reason: the
# standalone xenstore-* tools speak to xenstored themselves (no xenlited needed), and the
# guest kit is built and booted by its own verb and by the demo.
CLI_FUNCTION_LEVEL = {
    "commands/xenstore.py": {"xenstore"},
    "commands/guestkit.py": {"guestkit"},
    "commands/demo.py": {"guestkit"},
    # pygrub is a program of its own that reads an image, as Xen's runs without xenlited.
    "commands/pygrub.py": {"boot"},
    # xl vncviewer reads the display's address from XenStore, as libxl_vncviewer_exec does.
    "commands/vnc.py": {"xenstore"},
    # create-image and its kin are programs of their own, as xen-tools' are: they make and
    # remove files, volumes and configs on the host and need no xenlited.
    "commands/images.py": {"provision"},
}


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported xenlite package, is at module level) for every import in a module."""
    found: list[tuple[str, bool]] = []
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "xenlite" and len(parts) > 1:
                found.append((parts[1], id(node) in top_level))
    return found


def _modules() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(SRC).parts[0], path)
        for path in sorted(SRC.rglob("*.py"))
        if len(path.relative_to(SRC).parts) > 1
    ]


def test_every_package_has_a_layer() -> None:
    packages = {pkg for pkg, _ in _modules()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_layers_import_only_downwards() -> None:
    violations = []
    for pkg, path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported, module_level in _imports(tree):
            if imported == pkg or imported not in LAYERS:
                continue
            mine, theirs = LAYERS[pkg], LAYERS[imported]
            if pkg == "cli":
                where = path.relative_to(SRC / "cli").as_posix()
                allowed = CLI_MODULE_LEVEL
                if not module_level:
                    allowed = allowed | CLI_FUNCTION_LEVEL.get(where, set())
                if imported not in allowed:
                    level = "module-level" if module_level else "function-level"
                    violations.append(f"{path}: {level} import of xenlite.{imported}")
                continue
            if (pkg, imported) in SAME_LAYER_ALLOWED:
                continue
            if theirs > mine or (theirs == mine and mine != 0):
                violations.append(f"{path}: L{mine} {pkg} imports L{theirs} {imported}")
    assert not violations, "\n".join(violations)


def test_cli_start_up_imports_nothing_heavy() -> None:
    code = (
        "import sys, xenlite.cli.main as m\n"
        "heavy = [n for n in ('asyncio', 'xenlite.daemon', 'xenlite.config.domain.build', 'json')"
        " if n in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"xenlite.cli.main loads {out} at start-up"
