#!/usr/bin/env python3
"""Checks the layering matrix (layers.txt) against the tree.

Three rules, each reported with the file and line that breaks it:
  1. An #include "folder/x.h" in a product folder names its own folder or
     one the matrix lets it use.
  2. The folder's library (or executable) links PRIVATE to exactly the
     libraries of the folders the matrix lets it use: no more (the include
     rule would be the only guard) and no fewer (a folder may use only
     what it links).
  3. The namespaces follow the folders: a file in folder F (or nested in it,
     proxy/upstream in proxy) opens only tlsedge::F and namespaces inside
     it; base, the vocabulary every layer uses, opens tlsedge and its own
     small namespaces (tlsedge::log, ...).

Usage: check_layers.py [ROOT] [--layers FILE]   exit 0 clean, 1 violations.
"""
import argparse
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
NAMESPACE = re.compile(r"^namespace (tlsedge(?:::\w+)*) \{")
VOCABULARY = "base"
LINK = re.compile(r"target_link_libraries\(\s*(\S+)(.*?)\)", re.S)


def read_layers(path):
    layers = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(":")]
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise SystemExit(f"{path}:{number}: expected 'folder: library: folders...'")
        folder, library, uses = parts
        layers[folder] = (library, uses.split())
    for folder, (_, uses) in layers.items():
        for used in uses:
            if used not in layers:
                raise SystemExit(f"{path}: {folder} uses {used}, which is not a layer")
    return layers


def folder_of(path, layers):
    """The innermost layer a repository-relative path belongs to, or None."""
    best = None
    for folder in layers:
        if path == folder or path.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best


def check_includes(root, layers):
    problems = []
    for folder in layers:
        for source in sorted((root / folder).glob("*")):
            if source.suffix not in (".h", ".cc"):
                continue
            rel = source.relative_to(root).as_posix()
            own = folder_of(rel, layers)
            allowed = set(layers[own][1]) | {own}
            for number, line in enumerate(source.read_text().splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = folder_of(match.group(1), layers)
                if target is not None and target not in allowed:
                    problems.append(f"{rel}:{number}: includes {match.group(1)}: "
                                    f"{own} may not use {target}")
    return problems


def check_namespaces(root, layers):
    problems = []
    for folder in layers:
        top = folder.split("/")[0]
        own = f"tlsedge::{top}"
        for source in sorted((root / folder).glob("*")):
            if source.suffix not in (".h", ".cc"):
                continue
            rel = source.relative_to(root).as_posix()
            for number, line in enumerate(source.read_text().splitlines(), 1):
                match = NAMESPACE.match(line)
                if not match or top == VOCABULARY:
                    continue
                name = match.group(1)
                if name != own and not name.startswith(own + "::"):
                    problems.append(f"{rel}:{number}: namespace {name}: files of {folder} "
                                    f"open {own}")
    return problems


def check_links(root, layers):
    problems = []
    library_folder = {library: folder for folder, (library, _) in layers.items()}
    for folder, (library, uses) in layers.items():
        cmake = root / folder / "CMakeLists.txt"
        if not cmake.exists():
            problems.append(f"{folder}/CMakeLists.txt: missing")
            continue
        text = re.sub(r"#[^\n]*", "", cmake.read_text())
        linked = None
        for match in LINK.finditer(text):
            if match.group(1) != library:
                continue
            words = match.group(2).split()
            linked = set()
            mode = "PRIVATE"
            for word in words:
                if word in ("PRIVATE", "PUBLIC", "INTERFACE"):
                    mode = word
                elif word in library_folder:
                    if mode != "PRIVATE":
                        problems.append(f"{folder}/CMakeLists.txt: {library} links {word} {mode}: "
                                        "project libraries are linked PRIVATE")
                    linked.add(library_folder[word])
        if linked is None:
            linked = set()
        expected = set(uses)
        for extra in sorted(linked - expected):
            problems.append(f"{folder}/CMakeLists.txt: {library} links {layers[extra][0]}, "
                            f"but {folder} may not use {extra}")
        for missing in sorted(expected - linked):
            problems.append(f"{folder}/CMakeLists.txt: {library} does not link {layers[missing][0]}, "
                            f"though the matrix lets {folder} use {missing}")
    return problems


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=pathlib.Path(__file__).resolve().parents[2])
    parser.add_argument("--layers", default=None)
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    layers = read_layers(pathlib.Path(args.layers) if args.layers else
                         pathlib.Path(__file__).with_name("layers.txt"))
    problems = (check_includes(root, layers) + check_links(root, layers) +
                check_namespaces(root, layers))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layering problem(s); the matrix is tests/layering/layers.txt")
        return 1
    print(f"layering: {len(layers)} layers clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
