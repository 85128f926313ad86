#!/usr/bin/env python3
"""Fails on an import cycle between the modules of actor-cluster (its src/): a module's
dependencies are the `crate::<module>` paths its code names (comments and docs aside)."""
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actor-cluster", "src")
deps = {}
for dirpath, _, files in os.walk(root):
    for name in files:
        if not name.endswith(".rs"):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root)[:-3].replace(os.sep, "/")
        top = rel.split("/")[0]
        if top in ("lib", "mod"):
            continue
        code = "\n".join(l.split("//")[0] for l in open(path, encoding="utf-8"))
        used = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", code))
        # `use crate::{a, b::c}` lists
        for group in re.findall(r"crate::\{([^}]*)\}", code):
            used |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        deps.setdefault(top, set()).update(u for u in used if u != top)

modules = set(deps)
graph = {m: {d for d in ds if d in modules} for m, ds in deps.items()}
cycles, state, stack = [], {}, []


def visit(m):
    state[m] = 1
    stack.append(m)
    for d in sorted(graph[m]):
        if state.get(d) == 1:
            cycles.append(stack[stack.index(d):] + [d])
        elif d not in state:
            visit(d)
    stack.pop()
    state[m] = 2


for m in sorted(graph):
    if m not in state:
        visit(m)
for c in cycles:
    print("import cycle:", " -> ".join(c))
print(f"checked {len(graph)} modules of actor-cluster: {len(cycles)} import cycles")
sys.exit(1 if cycles else 0)
