#!/usr/bin/env python3
"""The public surface (issue 17, "a public API a newcomer can hold in their
head"), counted in the docs `cargo doc --no-deps` just wrote (the default
features; the `testing` feature off):

- names in the item list (`doc/ws_lifecycle/all.html`: the crate root and
  `fsm` together): at most 40;
- public types implementing `std::error::Error` (an `impl Error for` on the
  type's page): at most 8;
- `#[doc(hidden)]` in `src`: none;
- one path per type: no re-export of this crate's own items in the crate
  root's or `fsm`'s docs (only whole external crates: `http`, `rustls`).

Prints the counts and the names; exits 1 when a limit is passed.

    python3 .ci/api_surface.py [DOC_DIR]

DOC_DIR defaults to $CARGO_TARGET_DIR/doc/ws_lifecycle (or target/...).
"""
import os
import re
import sys

MAX_NAMES = 40
MAX_ERRORS = 8

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
doc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "doc", "ws_lifecycle")

with open(os.path.join(doc, "all.html"), encoding="utf-8") as f:
    items = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', f.read())
names = [name for _, name in items]

errors = []
for page, name in items:
    with open(os.path.join(doc, page), encoding="utf-8") as f:
        if 'id="impl-Error-for-' in f.read():
            errors.append(name)

# `pub use` lines rustdoc shows (it inlines an item re-exported from a
# private module, so any shown here is a second path to a public one).
reexports = []
for page in ("index.html", os.path.join("fsm", "index.html")):
    with open(os.path.join(doc, page), encoding="utf-8") as f:
        for used in re.findall(r"<code>pub use (.*?);</code>", f.read()):
            used = re.sub(r"<[^>]*>", "", used)
            if used not in ("async_tungstenite::tungstenite::http", "futures_rustls::rustls"):
                reexports.append(f"{page}: {used}")

hidden = []
for dirpath, _, files in os.walk(os.path.join(root, "src")):
    for file in sorted(files):
        if file.endswith(".rs"):
            path = os.path.join(dirpath, file)
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if "doc(hidden)" in line and not line.lstrip().startswith("//"):
                        hidden.append(f"{os.path.relpath(path, root)}:{n}")

print(f"{len(names)} names (at most {MAX_NAMES}): {', '.join(sorted(names))}")
print(f"{len(errors)} error types (at most {MAX_ERRORS}): {', '.join(sorted(errors))}")
print(f"{len(hidden)} #[doc(hidden)]: {', '.join(hidden) or 'none'}")
print(f"{len(reexports)} second paths: {', '.join(reexports) or 'none'}")
if len(names) > MAX_NAMES or len(errors) > MAX_ERRORS or hidden or reexports:
    sys.exit(1)
