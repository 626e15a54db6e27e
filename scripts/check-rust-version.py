#!/usr/bin/env python3
"""Proves each crate's `rust-version` is the true one: for every feature set of `d1ns`, on the
host and on wasm32, no crate a user builds with it (normal and build dependencies, not dev ones)
asks for a newer Rust than it declares, and the newest any of them asks for (or the edition's
first release) is exactly what it declares. Only one toolchain can be installed here, so this
reads the dependencies' own `rust-version` from `cargo metadata`."""

import json
import subprocess
import sys

FEATURE_SETS = ["", "sqlite", "d1", "d1,sqlite"]
# The first Rust of each edition: a crate of that edition needs at least this.
EDITION_RUST = {"2015": "1.0", "2018": "1.31", "2021": "1.56", "2024": "1.85"}


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def host():
    info = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return next(line.split(": ")[1] for line in info.splitlines() if line.startswith("host: "))


def metadata(features, platform):
    command = ["cargo", "metadata", "--format-version", "1", "--locked",
               "--filter-platform", platform, "--no-default-features"]
    if features:
        command += ["--features", features]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def built_with(nodes, start):
    """The ids of the packages building `start` builds, not following dev-dependencies."""
    seen, todo = set(), [start]
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        for dep in nodes[package]["deps"]:
            if any(kind["kind"] != "dev" for kind in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    return seen - {start}


def main():
    failures = []
    needed = {}  # member name -> (version, why)
    declared = {}
    for platform in [host(), "wasm32-unknown-unknown"]:
        for features in FEATURE_SETS:
            meta = metadata(features, platform)
            packages = {p["id"]: p for p in meta["packages"]}
            nodes = {node["id"]: node for node in meta["resolve"]["nodes"]}
            label = f"{platform}, d1ns features [{features}]"
            for member_id in meta["workspace_members"]:
                member = packages[member_id]
                name = member["name"]
                declared[name] = member["rust_version"]
                floor = (version(EDITION_RUST[member["edition"]]), f"edition {member['edition']}")
                needed.setdefault(name, floor)
                for dep in (packages[i] for i in built_with(nodes, member_id)):
                    wanted = dep.get("rust_version")
                    if not wanted:
                        continue
                    if version(wanted) > version(member["rust_version"]):
                        failures.append(f"{name}, {label}: {dep['name']} {dep['version']} needs "
                                        f"Rust {wanted}, above its rust-version {member['rust_version']}")
                    # Another member's own value is checked on its own; name the outside crate.
                    if dep["id"] not in meta["workspace_members"] and version(wanted) > needed[name][0]:
                        needed[name] = (version(wanted), f"{dep['name']} {dep['version']}, {label}")
    for name, (most, why) in sorted(needed.items()):
        print(f"{name}: declares {declared[name]}, needs {'.'.join(map(str, most))} ({why})")
        if version(declared[name]) != most:
            failures.append(f"{name}: rust-version is {declared[name]} but the most it needs is "
                            f"{'.'.join(map(str, most))} ({why}): declare that")
    for failure in failures:
        print(failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


main()
