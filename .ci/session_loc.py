#!/usr/bin/env python3
"""Lines of session logic outside the pure core, as issue 17 counts them:
every .rs file under src/ except src/fsm/**, src/lib.rs,
src/driver/transport/** and the recorder's src/driver/record*, without
blank lines, comment lines, `#[cfg(test)]` modules or test-only files
(a file declared only under `#[cfg(test)]`).

    python3 .ci/session_loc.py [ROOT]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")


def test_only_modules(src):
    """Names of modules declared `#[cfg(test)] mod name;` anywhere under src."""
    names = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                text = open(os.path.join(dirpath, f)).read()
                names.update(re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+(\w+)\s*;", text))
    return names


def code_lines(path):
    count, in_test, depth, cfg_test = 0, False, 0, False
    for line in open(path):
        s = line.strip()
        if in_test:
            depth += line.count("{") - line.count("}")
            in_test = depth > 0
            continue
        if s.startswith("#[cfg(test)]"):
            cfg_test = True
            continue
        if cfg_test:
            cfg_test = False
            if re.match(r"(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", s):
                depth = line.count("{") - line.count("}")
                in_test = depth > 0
                continue
            if re.match(r"(pub(\(crate\))?\s+)?mod\s+\w+\s*;", s):
                continue
        if not s or s.startswith("//"):
            continue
        count += 1
    return count


src = os.path.join(root, "src")
test_only = test_only_modules(src)
rows = []
for dirpath, _, files in os.walk(src):
    for f in files:
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)
        if not f.endswith(".rs") or rel == os.path.join("src", "lib.rs"):
            continue
        if rel.startswith(os.path.join("src", "fsm") + os.sep):
            continue
        if rel.startswith(os.path.join("src", "driver", "transport") + os.sep):
            continue
        if rel.startswith(os.path.join("src", "driver", "record")):
            continue
        if f[:-3] in test_only or f.endswith("_tests.rs"):
            continue
        rows.append((code_lines(path), rel))
for n, rel in sorted(rows, reverse=True):
    print(f"{n:6} {rel}")
print(f"{sum(n for n, _ in rows):6} total")
