"""Imports point down the layers (DESIGN.md) and no modules import each other in a circle.

    api, webui  →  flows  →  tasks  →  blocks

webui talks to the facade over HTTP and imports none of them. Every import counts, also
one inside a function: a lazy import that points up is still an arrow up.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RANK = {"blocks": 1, "tasks": 2, "flows": 3, "api": 4, "webui": 4}


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
                if head != layer and (RANK[head] > RANK[layer] or layer == "webui"):
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return graph, upward


def test_every_import_points_down():
    _, upward = _graph()
    assert upward == []


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
