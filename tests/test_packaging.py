"""`pip install .` brings what the package imports: every third-party module imported anywhere in
hashdemo/ belongs to a distribution that pyproject.toml declares (a runtime dependency, or the optional
Milvus extra for the modules that only the Milvus backend imports)."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = {  # import name -> distribution name, where they differ
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "faiss": "faiss-cpu",
    "grpc": "grpcio",
}
TRANSITIVE = {"grpcio": "pymilvus"}  # imported for its error types; the Milvus extra's pymilvus brings it
TEST_ONLY = {"milvus"}  # the standalone server the Milvus tests and bench start: requirements-test.txt


def third_party_imports() -> set[str]:
    found = set()
    for path in (ROOT / "hashdemo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found if name != "hashdemo" and name not in sys.stdlib_module_names}


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    extras = set().union(*(names(r) for r in project.get("optional-dependencies", {}).values()))
    return names(project["dependencies"]), extras


def test_every_imported_distribution_is_declared():
    runtime, extras = declared()
    tests = (ROOT / "requirements-test.txt").read_text()
    for module in third_party_imports():
        distribution = DISTRIBUTION.get(module, module).lower().replace("_", "-")
        if distribution in TEST_ONLY:
            assert re.search(rf"^{distribution}==", tests, re.M), (
                f"{distribution} is not in requirements-test.txt"
            )
            continue
        needed = TRANSITIVE.get(distribution, distribution)
        assert needed in runtime | extras, (
            f"hashdemo imports {module}; pyproject.toml does not declare {needed}"
        )


def test_the_check_sees_the_core_imports():
    assert {"torch", "numpy", "gradio", "cv2", "faiss"} <= third_party_imports()
