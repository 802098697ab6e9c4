#!/usr/bin/env python3
"""Import cycles among a Rust crate's modules, in non-test code.

usage: scripts/check-module-cycles.py SRC_DIR [MODULE]
  scripts/check-module-cycles.py src          the top-level modules (board, plan, rootfs, ...)
  scripts/check-module-cycles.py src rootfs   the files of one module (entry, reader, ...)

An edge A -> B is any `crate::B` (or `super::B` for a sibling) path in A's
files, `use` lines and inline paths alike, with `mod tests`, tests/ folders
and comments left out; the parent's mod.rs (a facade its children may name)
is not a node. Prints each cycle (a strongly connected component) with its
edges and exits 1, or prints "no cycles". A text scan, not a compiler: a
macro-built path would escape it.
"""
import os, re, sys
root = sys.argv[1]; within = sys.argv[2] if len(sys.argv) > 2 else None
def modpath(f):
    rel = os.path.relpath(f, root)[:-3].split('/')
    if rel[-1] == 'mod': rel = rel[:-1]
    return rel
def strip_tests(text):
    i = re.search(r'#\[cfg\(test\)\]\s*mod tests\s*\{', text)
    text = text[:i.start()] if i else text
    return re.sub(r'//[^\n]*', '', text)  # drop comments and doc comments
edges = {}
for d, _, fs in os.walk(root):
    for fn in fs:
        if not fn.endswith('.rs'): continue
        f = os.path.join(d, fn); mp = modpath(f)
        if 'tests' in mp or any(p.endswith('tests') for p in mp): continue
        text = strip_tests(open(f).read())
        refs = set()
        for m in re.finditer(r'crate::([a-z_0-9]+)(?:::([a-z_0-9]+))?', text):
            refs.add((m.group(1), m.group(2)))
        # `crate::a::{b, c::D, ...}`: every first-level name in the braces
        for m in re.finditer(r'crate::([a-z_0-9]+)::\{([^}]*)\}', text):
            for name in re.findall(r'(?:^|,)\s*([a-z_0-9]+)\b', m.group(2)):
                refs.add((m.group(1), name))
        # `use super::x` inside a file: sibling module (for files in a folder)
        supers = re.findall(r'\bsuper::([a-z_0-9]+)', text)
        for m in re.finditer(r'\bsuper::\{([^}]*)\}', text):
            supers += re.findall(r'(?:^|,)\s*([a-z_0-9]+)\b', m.group(1))
        for name in supers:
            parent = mp[:-1]
            if parent: refs.add((parent[0], name) if len(parent) == 1 else (parent[0], parent[1]))
        if within is None:
            src = mp[0] if mp else 'lib'
            for a, _ in refs:
                if a != src: edges.setdefault(src, set()).add(a)
        else:
            if not mp or mp[0] != within or len(mp) < 2: continue
            src = mp[1]
            for a, b in refs:
                if a == within and b and b != src: edges.setdefault(src, set()).add(b)
# Tarjan SCC
idx = {}; low = {}; st = []; on = set(); out = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in idx: sc(v)
for comp in out:
    print('cycle among:', ' '.join(comp))
    for a in comp:
        print('   ', a, '->', ' '.join(sorted(b for b in edges.get(a, ()) if b in comp)))
if not out: print('no cycles')
sys.exit(1 if out else 0)
