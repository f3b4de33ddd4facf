"""The package's layers and their one import direction: core <- retrieval <- train, app and cli.

`hashdemo.train` sits above retrieval: it selects the epoch on val with the evaluation protocol.

Nothing in the package imports the app or cli layers except the `python -m` entry points (inside their
`if __name__ == "__main__":` block); the server (`import app`) loads neither pyplot nor any cli module.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"core": 0, "retrieval": 1, "train": 2, "app": 2, "cli": 3}
ALLOWED = {  # which layers each layer may import
    "core": {"core"},
    "retrieval": {"core", "retrieval"},
    "train": {"core", "retrieval", "train"},
    "app": {"core", "retrieval", "app"},
    "cli": {"core", "retrieval", "train", "app", "cli"},
}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "train":
        return "train"
    return parts[1] if len(parts) > 2 and parts[1] in RANK else "core"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """hashdemo modules (and `app`) imported by `path`, outside its `if __name__ == "__main__":` block."""
    tree = ast.parse(path.read_text())
    main_blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and "__main__" in ast.unparse(node.test)
        and "__name__" in ast.unparse(node.test)
    ]
    skipped = {id(n) for block in main_blocks for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "app" or name.startswith("hashdemo.")}


PACKAGE_FILES = sorted((ROOT / "hashdemo").rglob("*.py"))


def test_the_walk_sees_the_whole_package():
    assert {layer(module_name(p)) for p in PACKAGE_FILES} == set(RANK)
    assert len(PACKAGE_FILES) > 20


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    source = layer(module_name(path))
    for target in imports(path):
        assert target != "app", f"{path.name} imports the app module"
        assert layer(target) in ALLOWED[source], (
            f"{module_name(path)} ({source}) imports {target} ({layer(target)})"
        )


def test_the_layer_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from hashdemo.cli.evaluate import main\n")
    assert "hashdemo.cli.evaluate" in imports(bad) and layer("hashdemo.cli.evaluate") not in ALLOWED["app"]
    ok = tmp_path / "ok.py"
    ok.write_text('if __name__ == "__main__":\n    from hashdemo.cli.evaluate import main\n')
    assert imports(ok) == set()


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
