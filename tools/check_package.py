#!/usr/bin/env python3
"""Check the plugin zip before it is published (make package runs it on dist/deepstrata.zip).

    python3 tools/check_package.py dist/deepstrata.zip
    python3 tools/check_package.py --build HEAD dist/deepstrata.zip   # git archive HEAD, then check
    python3 tools/check_package.py --build WORKTREE /tmp/deepstrata.zip  # the checkout as it stands, uncommitted

It checks the zip itself, not the checkout: every relative link and image in the zipped Markdown resolves to a
file inside the zip, LICENSE is there (GPL), metadata.txt has every field the QGIS plugin repository requires
with valid values (well-formed URLs, a version the changelog names, an icon that is in the zip), and no
development tree (training/, tests/, benchmarks/, tools/, .ci/), dev file or folder named processing/ (it would
shadow QGIS's own processing package) was zipped. Standard library only, so it runs without the venv.
"""
from __future__ import annotations

import argparse
import configparser
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

PLUGIN = "deepstrata"
# What plugins.qgis.org refuses an upload without, and homepage, which its guidelines ask for.
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
            "repository", "tracker", "homepage")
URL_FIELDS = ("repository", "tracker", "homepage")
BOOLEAN_FIELDS = ("experimental", "deprecated", "server", "supportsQt6")
DEV_DIRS = {"training", "tests", "benchmarks", "tools", ".ci", ".git", ".github", ".build", ".venv", "__pycache__",
            "processing"}
DEV_FILES = {"Makefile", "requirements-dev.txt", ".gitignore", ".gitattributes", "pytest.ini", "conftest.py",
             "setup.cfg", "pyproject.toml", "tox.ini", ".DS_Store"}
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# [text](target), ![alt](target), with an optional "title"; <target> in angle brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"
                         r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def markdown_targets(text: str) -> list[str]:
    """Link and image targets of a Markdown text, outside fenced code blocks and code spans."""
    kept, fence = [], ""
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1) == fence:
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        kept.append(CODE_SPAN.sub("", line))
    prose = "\n".join(kept)
    found = [m.group(1) for m in INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in REFERENCE_LINK.finditer(prose)]
    found += [m.group(1) for m in HTML_LINK.finditer(prose)]
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def link_problem(source: str, target: str, files: set[str], dirs: set[str]) -> str | None:
    """Why a link target in the zipped file `source` does not resolve inside the zip (None when it does)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path:  # http(s), mailto, //host, or #anchor in this page
        return None
    path = unquote(parts.path)
    if path.startswith("/"):
        return f"{source}: absolute link {target!r} (use a path relative to the page)"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if resolved == ".." or resolved.startswith("../"):
        return f"{source}: link {target!r} leaves the plugin folder"
    if resolved not in files and resolved not in dirs:
        return f"{source}: link {target!r} points at {resolved}, which is not in the zip"
    return None


def url_problem(key: str, value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or "." not in parts.netloc or any(c.isspace() for c in value):
        return f"metadata.txt: {key}={value!r} is not a well-formed http(s) URL"
    return None


def metadata_problems(text: str, files: set[str]) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep qgisMinimumVersion's case
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return [f"metadata.txt does not parse: {exc}"]
    if not parser.has_section("general"):
        return ["metadata.txt has no [general] section"]
    meta = {k: v.strip() for k, v in parser.items("general")}
    problems = [f"metadata.txt: required field {key} is missing or empty" for key in REQUIRED if not meta.get(key)]
    # QGIS's plugin manager reads metadata.txt with ConfigParser's default interpolation: a lone % breaks it.
    for key, value in meta.items():
        if "%" in value.replace("%%", ""):
            problems.append(f"metadata.txt: {key} has a '%' (write '%%' or 'percent'; QGIS cannot read a lone '%')")
    name = meta.get("name", "")
    if "plugin" in name.lower():
        problems.append(f"metadata.txt: name={name!r} repeats 'plugin' (the repository asks not to)")
    for key in ("qgisMinimumVersion", "qgisMaximumVersion", "version"):
        if meta.get(key) and not VERSION.match(meta[key]):
            problems.append(f"metadata.txt: {key}={meta[key]!r} is not a version like 1.2 or 1.2.3")
    if meta.get("description") and "\n" in meta["description"]:
        problems.append("metadata.txt: description must be one line (the details go in about)")
    if meta.get("email") and not EMAIL.match(meta["email"]):
        problems.append(f"metadata.txt: email={meta['email']!r} is not an e-mail address")
    for key in URL_FIELDS:
        if meta.get(key):
            problem = url_problem(key, meta[key])
            if problem:
                problems.append(problem)
    for key in BOOLEAN_FIELDS:
        if key in meta and meta[key].lower() not in ("true", "false"):
            problems.append(f"metadata.txt: {key}={meta[key]!r} is not True or False")
    icon = meta.get("icon", "")
    if not icon:
        problems.append("metadata.txt: icon is missing")
    elif posixpath.normpath(icon) not in files:
        problems.append(f"metadata.txt: icon={icon!r} is not in the zip")
    changelog = meta.get("changelog", "").strip()
    if meta.get("version") and changelog.split(maxsplit=1)[:1] != [meta["version"]]:
        problems.append(f"metadata.txt: the changelog does not start with the version {meta.get('version')!r}")
    return problems


def check_zip(path: Path | str, plugin: str = PLUGIN) -> list[str]:
    """Every problem found in the plugin zip at `path`, as one sentence each; empty when it is fit to publish."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path}: not a readable zip ({exc})"]
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        problems = [f"{n}: outside the top folder {plugin}/" for n in names if not n.startswith(plugin + "/")]
        files = {n[len(plugin) + 1:] for n in names if n.startswith(plugin + "/")}
        dirs = {posixpath.dirname(f) for f in files}
        dirs |= {"/".join(d.split("/")[:i]) for d in dirs for i in range(1, d.count("/") + 1)}
        dirs.discard("")
        for rel in sorted(files):
            parts = rel.split("/")
            bad_dir = next((p for p in parts[:-1] if p in DEV_DIRS), None)
            if bad_dir:
                problems.append(f"{rel}: a {bad_dir}/ folder does not belong in the plugin zip")
            elif parts[-1] in DEV_FILES or parts[-1].endswith((".pyc", ".pyo")) or re.match(r"test_.*\.py$", parts[-1]):
                problems.append(f"{rel}: a development file does not belong in the plugin zip")
        if "__init__.py" not in files:
            problems.append(f"{plugin}/__init__.py is missing")
        license_name = next((n for n in ("LICENSE", "LICENSE.txt", "LICENSE.md") if n in files), None)
        if license_name is None:
            problems.append(f"{plugin}/LICENSE is missing (the QGIS plugin repository requires a GPL-compatible licence)")
        else:
            text = archive.read(f"{plugin}/{license_name}").decode("utf-8", "replace")
            if "GNU GENERAL PUBLIC LICENSE" not in text:
                problems.append(f"{plugin}/{license_name} is not the GNU GPL")
        if "metadata.txt" in files:
            problems += metadata_problems(archive.read(f"{plugin}/metadata.txt").decode("utf-8"), files)
        else:
            problems.append(f"{plugin}/metadata.txt is missing")
        for rel in sorted(f for f in files if f.lower().endswith(".md")):
            text = archive.read(f"{plugin}/{rel}").decode("utf-8", "replace")
            for target in markdown_targets(text):
                problem = link_problem(rel, target, files, dirs)
                if problem:
                    problems.append(problem)
    return problems


def build(repo: Path | str, rev: str, out: Path | str, plugin: str = PLUGIN) -> Path:
    """`git archive` of `rev` (a commit or tree) as the plugin zip; .gitattributes export-ignore applies."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "archive", "--format=zip", f"--prefix={plugin}/", "-o", str(out.resolve()), rev],
                   cwd=repo, check=True)
    return out


def worktree_tree(repo: Path | str) -> str:
    """A git tree of the checkout as it stands: the index's files with their working-tree contents.

    Built in a copy of the index, so the checkout's own index is never written (others may be using it). In a
    fresh clone this is HEAD's tree.
    """
    def git(*args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    index = Path(repo, git("rev-parse", "--git-path", "index"))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(tmp, "index")))
        if index.is_file():
            shutil.copyfile(index, env["GIT_INDEX_FILE"])
        else:
            git("read-tree", "HEAD", env=env)
        git("add", "--update", "--", ".", env=env)
        return git("write-tree", env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zip", type=Path, help="the plugin zip to check")
    parser.add_argument("--build", metavar="REV", help="first write the zip with git archive REV (HEAD, or "
                        "WORKTREE for the checkout's tracked files as they stand)")
    args = parser.parse_args(argv)
    if args.build:
        repo = Path(__file__).resolve().parents[1]
        build(repo, worktree_tree(repo) if args.build == "WORKTREE" else args.build, args.zip)
    problems = check_zip(args.zip)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{args.zip}: {len(problems)} problem(s); not fit to publish", file=sys.stderr)
        return 1
    print(f"{args.zip}: links, licence, metadata and contents checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
