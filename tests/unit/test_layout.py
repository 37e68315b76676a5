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


def _entry_point_schemes() -> dict[str, str]:
    """scheme → "module:factory [extra]" as pyproject.toml registers secretkit's own backends."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    found: dict[str, str] = project["entry-points"]["secretkit.drivers"]
    return found


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (docstrings, which may show example URLs, left out)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_every_backend_is_registered_by_an_entry_point_and_nothing_central_names_one() -> None:
    """A new backend is one package plus one entry-point line: the registry and the tools read
    the entry points, so neither holds a second list to edit."""
    schemes = _entry_point_schemes()
    assert {"memory", "vault", "aws-sm", "k8s"} <= set(schemes)
    for path in [PACKAGE / "registry.py", *sorted((PACKAGE.parent / "tools").glob("*.py"))]:
        text = path.read_text()
        assert "secretkit.drivers." not in text.replace("secretkit.drivers.base", ""), f"{path.name} names a driver module"
        for literal in _code_strings(path):
            for scheme in schemes:
                # a scheme or a URL of one as a value (a table key, a default); prose in a message
                # that shows an example URL is not a list of backends
                assert literal.lower() != scheme and not literal.lower().startswith(f"{scheme}:"), (
                    f"{path.name} names the {scheme} backend ({literal!r})"
                )


def test_every_entry_point_names_a_factory_that_exists() -> None:
    import importlib

    for scheme, value in _entry_point_schemes().items():
        module, _, attr = value.partition("[")[0].strip().partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), scheme


def test_backend_test_harnesses_live_beside_their_driver() -> None:
    """moto's fidelity patches beside the AWS driver, the kubelet volume beside files://; the
    ``secretkit.testing`` names docs/testing.md listed before stay as aliases of the same objects."""
    import secretkit.drivers.aws.moto as aws_moto
    import secretkit.drivers.files.kubelet as kubelet
    import secretkit.testing.kubelet as kubelet_alias
    import secretkit.testing.moto as moto_alias

    assert moto_alias.aws_faithful_moto is aws_moto.aws_faithful_moto
    assert kubelet_alias.KubeletVolume is kubelet.KubeletVolume
    for alias in (moto_alias, kubelet_alias):
        assert len((PACKAGE / "testing" / f"{alias.__name__.rpartition('.')[2]}.py").read_text().splitlines()) < 20


#: The modules the driver contract may rest on: no threads, no I/O, none of the store's machinery.
LEAF_MODULES = {
    "secretkit.errors", "secretkit.names", "secretkit.secret", "secretkit.fields", "secretkit.url",
    "secretkit.deadline", "secretkit.forking", "secretkit.policies", "secretkit.drivers.shared",
}
#: Driver modules every driver may share besides the contract.
SHARED_DRIVER_MODULES = {"secretkit.drivers.base", "secretkit.drivers.shared", "secretkit.drivers.versioned",
                         "secretkit.drivers.aws.common"}  # the layer every AWS driver shares (aws-sm, ssm)
#: Imports a driver still makes past the contract, each with the reason; the list only shrinks.
KNOWN_DRIVER_IMPORTS = {
    # the file store reuses the memory store's capabilities (the same semantics, on disk)
    ("secretkit.drivers.file.driver", "secretkit.drivers.memory"),
}
#: Modules still over the size limit; the list only shrinks.
KNOWN_LONG_MODULES: set[str] = set()
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


def test_names_split_out_of_a_long_module_stay_importable_where_they_were() -> None:
    """Splitting a module moves no public name: drivers, docs and test suites outside this
    package import them from the old module, and get the same objects."""
    import secretkit.fields as fields
    import secretkit.secret as secret
    import secretkit.testing.common as common
    import secretkit.testing.conformance as conformance
    import secretkit.testing.readonly as readonly

    for name in ("FieldValue", "TextForm", "fields_to_json", "parse_fields", "text_form"):
        assert getattr(secret, name) is getattr(fields, name), name
    assert conformance.ReadOnlyStoreConformance is readonly.ReadOnlyStoreConformance
    for name in ("ALL_OCTETS", "SENTINEL", "UNICODE_TEXT", "NameFactory", "Seed", "StoreFixtures"):
        assert getattr(conformance, name) is getattr(common, name), name
