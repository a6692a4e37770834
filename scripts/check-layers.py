#!/usr/bin/env python3
"""The app's layer rule (see src/lib.rs and ARCHITECTURE.md): a module of src/ imports only from its own
layer or a lower one, and no two modules import each other in a circle. Fails naming each import that
breaks the rule. Usage: python3 scripts/check-layers.py [SRC_DIR]"""
import pathlib
import re
import sys

# Bottom to top. A path is matched by its longest listed prefix (module path under `crate::`).
LAYERS = [
    ("browser helpers and the error type", ["error", "browser"]),
    ("storage and the worker client", ["store", "worker_client"]),
    ("state", ["state"]),
    ("label editing and the sync push", ["editing"]),
    ("features", ["features"]),
    ("ui", ["ui"]),
]
LEVEL = {prefix: i for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
# The crate root only declares the modules and mounts the UI.
ROOT_FILES = {"lib.rs", "main.rs"}

# `crate::a::b` anywhere (use lines, paths in code), and `use super::x` resolved against the file.
CRATE_PATH = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)")
USE_SUPER = re.compile(r"\buse\s+super::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*))")


def module_of(path: pathlib.Path, src: pathlib.Path) -> list[str]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def layer_of(module: list[str]) -> int | None:
    for n in range(len(module), 0, -1):
        level = LEVEL.get("::".join(module[:n]))
        if level is not None:
            return level
    return None


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def imports_of(path: pathlib.Path, module: list[str], src: pathlib.Path) -> set[tuple[str, ...]]:
    text = strip_comments(path.read_text())
    found = set()
    for m in CRATE_PATH.finditer(text):
        found.add(tuple(m.group(1).split("::")))
    is_mod_file = path.name == "mod.rs"
    parent = module if is_mod_file else module[:-1]
    for m in USE_SUPER.finditer(text):
        names = m.group(1) or m.group(2)
        for name in re.findall(r"[a-z_][a-z0-9_]*", names):
            if name != "self":
                found.add(tuple(parent[:-1] + [name]) if is_mod_file else tuple(parent + [name]))
    # Keep only paths that name a module file of the crate (the longest such prefix).
    modules = set()
    for imported in found:
        for n in range(len(imported), 0, -1):
            candidate = src.joinpath(*imported[:n])
            if candidate.with_suffix(".rs").is_file() or (candidate / "mod.rs").is_file():
                modules.add(imported[:n])
                break
    return modules


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    problems = []
    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for path in sorted(src.rglob("*.rs")):
        if path.relative_to(src).as_posix() in ROOT_FILES:
            continue
        module = module_of(path, src)
        level = layer_of(module)
        if level is None:
            problems.append(f"{path}: `{'::'.join(module)}` is in no layer (add it to LAYERS)")
            continue
        deps = imports_of(path, module, src)
        graph[tuple(module)] = deps
        for dep in sorted(deps):
            dep_level = layer_of(list(dep))
            if dep_level is not None and dep_level > level:
                problems.append(
                    f"{path}: imports crate::{'::'.join(dep)} ({LAYERS[dep_level][0]}) "
                    f"from a lower layer ({LAYERS[level][0]})"
                )
    # Circles between modules (a module and its own submodules do not count).
    def related(a, b):
        return a[: len(b)] == b or b[: len(a)] == a

    state: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            dep = next((m for m in graph if m == dep), dep)
            if dep not in graph or related(node, dep):
                continue
            if state.get(dep) == 1:
                circle = stack[stack.index(dep):] + [dep]
                problems.append("import circle: " + " -> ".join("::".join(m) for m in circle))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for p in problems:
        print(p)
    if problems:
        print(f"layer check: {len(problems)} problem(s)")
        return 1
    print(f"layer check: {len(graph)} modules in {len(LAYERS)} layers, imports only downward, no circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
