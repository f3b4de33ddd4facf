"""The package's layers and their one import direction:
core (the flat root) <- storage <- data <- model <- retrieval <- training, evaluation <- service
<- app, cli; harness (test and bench servers) beside, above model.

Nothing outside hashdemo.cli imports a command-line module, not even under `if __name__ == "__main__"`
(`python -m hashdemo <verb>` is the one entry), the command line reaches the web app only in `bench`
(which times it), the import graph has no cycle, and the server (`import app`) loads neither pyplot nor
any cli module.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BELOW = {  # each layer may import itself, the flat root ("core") and these
    "core": set(),
    "storage": set(),
    "data": {"storage"},
    "model": {"storage", "data"},
    "retrieval": {"storage", "data", "model"},
    "training": {"storage", "data", "model", "retrieval"},
    "evaluation": {"storage", "data", "model", "retrieval"},
    "service": {"storage", "data", "model", "retrieval", "evaluation"},
    "harness": {"storage", "data", "model"},
    "app": {"storage", "data", "model", "retrieval", "evaluation", "service"},
    "cli": {"storage", "data", "model", "retrieval", "training", "evaluation", "service", "app", "harness"},
}
ALLOWED = {name: {"core", name} | below for name, below in BELOW.items()}
PACKAGES = set(BELOW) - {"core"}
FLAT_ROOT_LIMIT = 6  # modules left in the package root, __init__ and __main__ included
CLI_MAY_IMPORT_APP = {"hashdemo.cli.bench", "hashdemo.cli.bench_photos"}  # they time the web app itself


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "__main__":
        return "cli"  # the dispatcher of `python -m hashdemo <verb>`
    return parts[1] if len(parts) > 2 and parts[1] in PACKAGES else "core"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """hashdemo modules (and `app`) that `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "app" or name.startswith("hashdemo.")}


PACKAGE_FILES = sorted((ROOT / "hashdemo").rglob("*.py"))


def test_the_walk_sees_the_whole_package():
    assert {layer(module_name(p)) for p in PACKAGE_FILES} == set(ALLOWED)
    assert len(PACKAGE_FILES) > 20


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    source = layer(module_name(path))
    for target in imports(path):
        assert target != "app", f"{path.name} imports the app module"
        assert layer(target) in ALLOWED[source], (
            f"{module_name(path)} ({source}) imports {target} ({layer(target)})"
        )
        if source == "cli" and layer(target) == "app":
            assert module_name(path) in CLI_MAY_IMPORT_APP, (
                f"{module_name(path)} imports the web app's {target}"
            )


def test_the_package_root_is_nearly_empty():
    flat = sorted(p.name for p in (ROOT / "hashdemo").glob("*.py"))
    assert len(flat) <= FLAT_ROOT_LIMIT, flat


def test_the_layer_rule_catches_a_violation(tmp_path):
    for text in (
        "from hashdemo.cli.evaluate import main\n",
        'if __name__ == "__main__":\n    from hashdemo.cli.evaluate import main\n',
    ):
        bad = tmp_path / "bad.py"
        bad.write_text(text)
        assert (
            "hashdemo.cli.evaluate" in imports(bad) and layer("hashdemo.cli.evaluate") not in ALLOWED["app"]
        )


def test_the_import_graph_has_no_cycle():
    modules = {module_name(p): p for p in PACKAGE_FILES}
    graph = {
        name: {target for target in imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*trail, name, target])
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.slow
def test_the_server_loads_no_pyplot_and_no_cli_module():
    script = (
        "import sys, app\n"
        "bad = sorted(m for m in sys.modules if m == 'matplotlib.pyplot' or m.startswith('hashdemo.cli'))\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout, out.stdout
