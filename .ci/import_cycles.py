#!/usr/bin/env python3
"""Import cycles between the files of src/ (issue 17: none allowed).

Each .rs file is a module; an edge A -> B when A names an item of B's module
through a `use` (crate::…, super::…, self::…). Prints every strongly
connected component of more than one file and exits 1 if there is one.

    python3 .ci/import_cycles.py [ROOT]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
src = os.path.join(root, "src")


def module_of(path):
    """The module path of a file, as a tuple: src/driver/mod.rs -> ('driver',)."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for dirpath, _, names in os.walk(src):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(dirpath, name)
            files[module_of(path)] = path


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def use_paths(text):
    """Every path a `use` names, with braces expanded."""
    out = []
    for stmt in re.findall(r"\buse\s+([^;]+);", strip_comments(text), re.S):
        stmt = re.sub(r"\s+", "", stmt)
        out.extend(expand(stmt))
    return out


def expand(stmt):
    m = re.match(r"^(.*?)\{(.*)\}$", stmt)
    if not m:
        return [stmt]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand(prefix + part)]


def target(module, path):
    """The file module a use path lands in (the longest existing prefix)."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] in ("super", "self"):
        # A file's own module is its path; `super` is its parent module.
        base = module
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    else:
        return None  # another crate
    best = None
    for i in range(len(segs) + 1):
        cand = base + tuple(s.split(" as ")[0] for s in segs[:i])
        if cand in files:
            best = cand
    return best


graph = {m: set() for m in files}
for module, path in files.items():
    for use in use_paths(open(path).read()):
        t = target(module, use)
        if t is not None and t != module and t != ():
            # Re-exports through a parent `mod.rs` are not the parent's code:
            # only count the edge when the target is not an ancestor.
            if module[: len(t)] != t:
                graph[module].add(t)

# Tarjan's strongly connected components.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        comps.append(comp)


for v in graph:
    if v not in index:
        visit(v)

cycles = [c for c in comps if len(c) > 1]
edges = sum(len(e) for e in graph.values())
print(f"{len(files)} files, {edges} import edges, {len(cycles)} cycles")
for c in cycles:
    print("cycle:", ", ".join(os.path.relpath(files[m], root) for m in sorted(c)))
sys.exit(1 if cycles else 0)
