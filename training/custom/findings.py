"""What the data held that the user should know: each finding has a count and says what was done about it
(dropped, reprojected, resampled, merged, reported), or the run is refused with the fix."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data.errors import DataError

log = logging.getLogger("training.custom")


class Refused(DataError):
    """The inputs cannot be used as given: the message counts the problem and names the fix."""


@dataclass
class Finding:
    code: str          # e.g. null_class, outside, crs, resolution, nodata_labels, overlap, fold_missing_class
    message: str
    count: int = 0
    action: str = "reported"
    details: dict[str, Any] = field(default_factory=dict)


class Findings:
    """The findings of one run, in the order they were met; each is logged as it is added."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, code: str, message: str, count: int = 0, action: str = "reported", **details: Any) -> Finding:
        finding = Finding(code, message, int(count), action, dict(details))
        self.items.append(finding)
        log.warning("finding (%s): %s", action, message)
        return finding

    def refuse(self, code: str, message: str, count: int = 0, **details: Any) -> Refused:
        """Record a refusal and return the error for the caller to raise."""
        self.add(code, message, count, "refused", **details)
        return Refused(message)

    def codes(self) -> list[str]:
        return [f.code for f in self.items]

    def of(self, code: str) -> list[Finding]:
        return [f for f in self.items if f.code == code]

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.items]


class Choices:
    """What was chosen (chip, block, epochs, ...) and why; each choice is logged as it is made."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def set(self, name: str, value: Any, why: str, given: bool = False) -> Any:
        self.items[name] = {"value": value, "why": "given on the command line" if given else why}
        log.info("%s = %s (%s)", name, value, self.items[name]["why"])
        return value

    def value(self, name: str) -> Any:
        return self.items[name]["value"]
