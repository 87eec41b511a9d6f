"""Imports point down the layers (DESIGN.md) and no modules import each other in a circle.

    api, webui  →  flows  →  tasks  →  blocks  →  spec

spec (the contract) imports nothing of ours. webui talks to the facade over HTTP: of the
project it imports only spec and the facade's client (api.client), which itself imports only
spec. Every import counts, also one inside a function: a lazy import that points up is
still an arrow up.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RANK = {"spec": 0, "blocks": 1, "tasks": 2, "flows": 3, "api": 4, "webui": 4}
CLIENT = "api.client"


def _allowed(module: str, layer: str, name: str) -> bool:
    """Whether `module` (in `layer`) may import `name`."""
    head = name.split(".")[0]
    if module == CLIENT or layer == "webui":  # HTTP clients: the contract and the client
        return head in ("spec", "webui") or name == CLIENT and module != CLIENT
    return head == layer or RANK[head] < RANK[layer]


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    graph: dict[str, set[str]] = {}
    upward = []
    for layer in RANK:
        for path in sorted((REPO / layer).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            graph.setdefault(module, set())
            for name, line in _imports(path):
                head = name.split(".")[0]
                if head not in RANK:
                    continue
                graph[module].add(name)
                if not _allowed(module, layer, name):
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return graph, upward


def test_every_import_points_down():
    _, upward = _graph()
    assert upward == []


def test_the_contract_is_pydantic_only():
    """spec imports no Prefect, no database, nothing of ours above it: anything can use it."""
    third = set()
    for path in sorted((REPO / "spec").rglob("*.py")):
        third |= {n.split(".")[0] for n, _ in _imports(path)}
    assert third <= {"spec", "pydantic", "pydantic_core", "annotated_types", "__future__"} | {
        "collections",
        "datetime",
        "enum",
        "hashlib",
        "json",
        "pathlib",
        "re",
        "typing",
        "uuid",
    }, third


def test_no_import_circle():
    graph, _ = _graph()

    def resolve(name: str) -> str:
        # `from tasks import media` names a package; `tasks.media.x` a module inside one.
        while name not in graph and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for name in graph.get(todo.pop(), ()):
                target = resolve(name)
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    circles = sorted(m for m in graph if m in reach(m) and not m.endswith("__init__"))
    assert circles == []
