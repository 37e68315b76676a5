"""The package's shape: no import cycles (type-checking imports included), a cheap import,
and the submodules a user reaches for available after a bare ``import secretkit``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import secretkit

PACKAGE = Path(secretkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every secretkit module → the secretkit modules it imports anywhere (function bodies and
    ``if TYPE_CHECKING:`` blocks included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.append(child if child in modules else base)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_submodules_are_reachable_after_a_bare_import() -> None:
    code = "import secretkit; print(secretkit.rotation.RotationError is secretkit.RotationError)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_import_secretkit_imports_no_sdk_pydantic_or_asyncio_only_dependency() -> None:
    code = (
        "import sys, secretkit; heavy = ('boto3', 'botocore', 'hvac', 'google', 'kubernetes', 'grpc', "
        "'pydantic', 'tenacity', 'requests', 'urllib3'); print([m for m in heavy if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


#: The modules the driver contract may rest on: no threads, no I/O, none of the store's machinery.
LEAF_MODULES = {
    "secretkit.errors", "secretkit.names", "secretkit.secret", "secretkit.url", "secretkit.deadline",
    "secretkit.forking", "secretkit.policies",
}
#: Driver modules every driver may share besides the contract.
SHARED_DRIVER_MODULES = {"secretkit.drivers.base", "secretkit.drivers.versioned"}
#: Imports a driver still makes past the contract, each with the reason; the list only shrinks.
KNOWN_DRIVER_IMPORTS = {
    # the file store reuses the memory store's capabilities (the same semantics, on disk)
    ("secretkit.drivers.file.driver", "secretkit.drivers.memory"),
    # Vault's bounded call at open (kv_version=auto) runs on the store's machinery until
    # drivers/base.py has the shared bounded call
    ("secretkit.drivers.vault.driver", "secretkit.retry"),
    ("secretkit.drivers.vault.driver", "secretkit.attempts"),
}
#: Modules still over the size limit; the list only shrinks.
KNOWN_LONG_MODULES = {"secretkit.secret", "secretkit.testing.conformance"}
MAX_LINES = 500


def test_the_driver_contract_rests_on_leaf_modules_only() -> None:
    graph = import_graph()
    assert graph["secretkit.drivers.base"] <= LEAF_MODULES, graph["secretkit.drivers.base"] - LEAF_MODULES
    for leaf in sorted(LEAF_MODULES):  # and the leaves on leaves
        assert graph[leaf] <= LEAF_MODULES, (leaf, graph[leaf] - LEAF_MODULES)


def _own_package(module: str) -> str:
    """``secretkit.drivers.aws.codec`` → ``secretkit.drivers.aws``; a one-module driver is its own."""
    parts = module.split(".")
    return ".".join(parts[:3])


def test_drivers_import_from_secretkit_only_the_contract_and_their_own_package() -> None:
    graph = import_graph()
    wrong = set()
    for module, imports in graph.items():
        if not module.startswith("secretkit.drivers.") or module in SHARED_DRIVER_MODULES:
            continue
        own = _own_package(module)
        for target in imports:
            if target in SHARED_DRIVER_MODULES or target == own or target.startswith(own + "."):
                continue
            if target == "secretkit.testing" or target.startswith("secretkit.testing."):
                continue  # test helpers living beside the driver they serve
            if (module, target) not in KNOWN_DRIVER_IMPORTS:
                wrong.add((module, target))
    assert not wrong, sorted(wrong)


def test_no_module_is_over_500_lines() -> None:
    lengths = {_module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    too_long = {m: n for m, n in lengths.items() if n > MAX_LINES and m not in KNOWN_LONG_MODULES}
    assert not too_long, too_long
    fixed = {m for m in KNOWN_LONG_MODULES if lengths.get(m, 0) <= MAX_LINES}
    assert not fixed, f"now within {MAX_LINES} lines: drop from KNOWN_LONG_MODULES: {fixed}"
