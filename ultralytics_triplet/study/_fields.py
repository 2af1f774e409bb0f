"""A dataclass mixin: fields read by name too (``row["config"]``), as the study's CSV and JSON outputs name them."""

from __future__ import annotations

import dataclasses
from typing import Any


class Fields:
    """Item access to a dataclass's fields, so a record also reads like the dict it is written as."""

    def __getitem__(self, key: str) -> Any:
        """Return the field ``key``."""
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        """The field names, in order."""
        return [f.name for f in dataclasses.fields(self)]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (nested records too), e.g. for JSON."""
        return dataclasses.asdict(self)
