"""The plugin's shipped Python files: what the plugin zip holds (not the folders .gitattributes export-ignores)."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SHIPPED = ("tests/", "training/", "benchmarks/", "tools/")


def shipped_files() -> list[Path]:
    """Every .py file the zip holds, tracked or not (a new module is checked before its first commit)."""
    ignored = list(NOT_SHIPPED)
    attributes = REPO / ".gitattributes"
    if attributes.exists():
        ignored += [line.split()[0] for line in attributes.read_text().splitlines()
                    if line.strip() and not line.startswith("#") and "export-ignore" in line.split()[1:]]
    files = []
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        relative = "/".join(parts)
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        if any(relative.startswith(prefix) if prefix.endswith("/") else relative == prefix for prefix in ignored):
            continue
        files.append(path)
    return files


def module_name(path: Path, package: str = "deepstrata") -> str:
    """deepstrata.processing_provider.provider for processing_provider/provider.py."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])
