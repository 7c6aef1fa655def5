"""Every system file the project uses comes from a package ``make`` installs.

A fresh machine has only what ``make system-deps`` installs: the Makefile's
``DEB_PACKAGES`` and what apt pulls in as their hard dependencies (it runs with
``--no-install-recommends``), on top of Debian's base system. A package that
happened to be on the development machine — as ``gstreamer1.0-x`` was, for the
demo camera's ``clockoverlay`` — lets every other test pass there and fail on a
clean one. So these tests read what the code uses from the code itself (not
from a list kept by hand, which rots the same way) and ask dpkg who owns it:

- every GStreamer element named in a launch line, through ``gst-inspect-1.0``;
- every executable or system file the code names: a bare command name found on
  ``PATH`` or in a directory the code names (``/usr/lib/postgresql/15/bin``), or
  an absolute path;
- every GObject typelib loaded with ``gi.require_version``;
- every header the benchmark's C publisher includes.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("gateway", "devices", "recorder", "alarms", "tests", "bench")
#: Where a file the code names by absolute path may belong to a package.
SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/")
#: Strings the code uses as data that happen to be command names too.
NOT_COMMANDS = {
    "w": "a file mode",
    "file": "a JSON key (an export's file)",
    "uptime": "a JSON key (a native device's heartbeat)",
    "init": "an argument (mosquitto_ctrl dynsec init)",
    "systemd": "a directory of the repository (tests/test_docs.py)",
    "route": "an ASGI scope key (gateway/api/deps.py)",
}
#: Element names that must not resolve.
NOT_ELEMENTS = {"nosuchelement": "tests/test_demo.py's broken camera"}
PLACEHOLDER = "\x00"  # stands for an f-string's {…} in the strings scanned


def _sources() -> Iterator[Path]:
    for top in SOURCE_DIRS:
        yield from sorted((ROOT / top).rglob("*.py"))


class _Strings(ast.NodeVisitor):
    """Every string literal but docstrings and bare string statements; an
    f-string as one string with its fields replaced by ``PLACEHOLDER``."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_Expr(self, node: ast.Expr) -> None:
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        parts = [
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else PLACEHOLDER
            for v in node.values
        ]
        self.found.append("".join(parts))
        for v in node.values:  # strings inside the fields themselves
            if isinstance(v, ast.FormattedValue):
                self.visit(v.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.found.append(node.value)


@functools.cache
def _trees() -> tuple[ast.Module, ...]:
    return tuple(ast.parse(path.read_text(), str(path)) for path in _sources())


@functools.cache
def source_strings() -> tuple[str, ...]:
    visitor = _Strings()
    for tree in _trees():
        visitor.visit(tree)
    return tuple(visitor.found)


def gst_elements() -> set[str]:
    """Element names in every launch line: the bare words of a string with a
    `` ! `` link in it (``key=value`` properties, caps with a ``/``, ``name.``
    pad references and f-string fields are not elements)."""
    elements: set[str] = set()
    for text in source_strings():
        if " ! " not in text:
            continue
        for token in re.split(r"[\s()]+", text):
            if re.fullmatch(r"[a-z][a-z0-9_]*", token) and token not in NOT_ELEMENTS:
                elements.add(token)
    return elements


def named_files() -> set[Path]:
    """System files the code names: absolute paths under the system prefixes,
    and bare command names resolved on ``PATH`` or in a directory the code names."""
    files: set[Path] = set()
    # The system's part of PATH: the venv's or a pyenv's bin is no package's.
    search = os.environ.get("PATH", "").split(os.pathsep)
    dirs = [Path(d) for d in search if d.startswith(SYSTEM_PREFIXES)]
    words: set[str] = set()
    for text in source_strings():
        if text.startswith(SYSTEM_PREFIXES) and PLACEHOLDER not in text:
            path = Path(text)
            if path.is_dir():
                dirs.append(path)
            elif path.exists():
                files.add(path)
        elif re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", text) and text not in NOT_COMMANDS:
            words.add(text)
    for word in words:
        for d in dirs:
            candidate = d / word
            if candidate.is_file() and os.access(candidate, os.X_OK):
                files.add(candidate)
                break
    return files


def typelibs() -> set[str]:
    """``Namespace-version`` of every ``gi.require_version(namespace, version)``."""
    found: set[str] = set()
    for tree in _trees():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "require_version"
                and all(isinstance(a, ast.Constant) for a in node.args)
            ):
                namespace, version = (a.value for a in node.args)  # type: ignore[attr-defined]
                found.add(f"{namespace}-{version}")
    return found


def c_headers() -> set[str]:
    return {
        m
        for c_file in ROOT.glob("bench/**/*.c")
        for m in re.findall(r"^#include <([^>]+)>", c_file.read_text(), re.MULTILINE)
    }


def makefile_packages() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^DEB_PACKAGES\s*:?=(.*)$", text, re.MULTILINE)
    assert match, "the Makefile has no DEB_PACKAGES list"
    return set(match.group(1).split())


@functools.cache
def _installed() -> dict[str, tuple[set[str], bool]]:
    """Each installed package: its hard dependencies (single alternatives only:
    with ``a | b`` apt may pick the other one), and whether the base system has it."""
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}\t${Package}\t${Pre-Depends}, ${Depends}\t"
            "${Essential}\t${Priority}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages: dict[str, tuple[set[str], bool]] = {}
    for line in out.splitlines():
        status, name, depends, essential, priority = line.split("\t")
        if not status.startswith("ii"):
            continue
        hard = {
            group.split()[0].split(":")[0]
            for group in depends.split(",")
            if group.strip() and "|" not in group
        }
        packages[name] = (hard, essential == "yes" or priority == "required")
    return packages


@functools.cache
def what_make_installs() -> frozenset[str]:
    """The Makefile's packages and the base system, with their hard dependencies."""
    installed = _installed()
    todo = list(makefile_packages() | {p for p, (_, base) in installed.items() if base})
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(installed[name][0])
    return frozenset(seen)


def owner(path: Path) -> str:
    """The Debian package that ships ``path`` (dpkg knows a file by the path the
    package put it at: with a merged /usr that may be ``/lib/…`` or ``/usr/lib/…``)."""
    real = Path(os.path.realpath(path))
    tried = []
    for p in (str(path), str(real)):
        tried += [p, p.removeprefix("/usr")] if p.startswith("/usr/") else [p, "/usr" + p]
    for candidate in dict.fromkeys(tried):
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if not line.startswith("diversion ") and ": " in line:
                return line.split(": ", 1)[0].split(",")[0].strip().split(":")[0]
    return ""


def assert_installed_by_make(things: dict[str, Path]) -> None:
    """Each ``what -> file``: the file's package is one ``make`` installs."""
    wrong = []
    for what, path in sorted(things.items()):
        package = owner(path)
        if package not in what_make_installs():
            wrong.append(f"{what} ({path}) is in {package or 'no package'}")
    assert not wrong, "not installed by `make system-deps`: " + "; ".join(wrong)


def test_the_makefile_lists_installed_packages() -> None:
    """The list parses, and this machine has every package on it (``make`` ran)."""
    listed = makefile_packages()
    assert {"mosquitto", "ffmpeg", "gstreamer1.0-plugins-base", "gcc"} <= listed
    assert listed <= set(_installed()), listed - set(_installed())


def test_every_gstreamer_element_in_a_launch_line_is_installed_by_make() -> None:
    elements = gst_elements()
    # The scan finds the demo camera's and the test cameras' pipelines.
    assert {"videotestsrc", "clockoverlay", "x264enc", "h264parse", "rtph264pay"} <= elements
    assert {"compositor", "avenc_aac", "udpsrc", "rtpjitterbuffer"} <= elements
    files: dict[str, Path] = {}
    missing = []
    for element in sorted(elements):
        out = subprocess.run(
            ["gst-inspect-1.0", element], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"^\s*Filename\s+(\S+)", out, re.MULTILINE)
        if match is None:
            missing.append(element)
        else:
            files[f"element {element}"] = Path(match.group(1))
    assert not missing, f"GStreamer elements not installed: {missing}"
    assert_installed_by_make(files)


def test_every_executable_and_system_file_the_code_names_is_installed_by_make() -> None:
    files = named_files()
    names = {p.name for p in files}
    # The scan finds what the gateway, the tests and the benchmarks run.
    assert {
        *("mosquitto", "mosquitto_ctrl", "mosquitto_sub", "ffmpeg", "ffprobe", "chromium"),
        *("initdb", "pg_ctl", "gcc", "runuser", "unshare", "nsenter", "ip", "ss", "python3"),
        *("mount", "umount", "mosquitto_dynamic_security.so"),
    } <= names, names
    assert_installed_by_make({str(p): p for p in files})


def test_every_typelib_the_cameras_load_is_installed_by_make() -> None:
    wanted = typelibs()
    assert {"Gst-1.0", "GstRtspServer-1.0"} <= wanted
    found = {}
    for lib in wanted:
        paths = sorted(Path("/usr/lib").glob(f"*/girepository-1.0/{lib}.typelib"))
        assert paths, f"no typelib for {lib}"
        found[lib] = paths[0]
    gi = shutil.which("python3", path="/usr/bin")
    assert gi is not None
    module = subprocess.run(
        [gi, "-c", "import gi; print(gi.__file__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    found["gi"] = Path(module)
    assert_installed_by_make(found)


@pytest.mark.parametrize("header", sorted(c_headers()) or ["(none found)"])
def test_every_header_the_c_publisher_includes_is_installed_by_make(header: str) -> None:
    paths = sorted(Path("/usr/include").glob(header)) + sorted(
        Path("/usr/include").glob(f"*/{header}")
    )
    assert paths, f"<{header}> is not installed"
    assert_installed_by_make({f"<{header}>": paths[0]})
