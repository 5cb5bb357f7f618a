"""``[scan]`` section of soc2ai.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ScanSettings(BaseModel):
    """Settings for soc2ai.scan."""

    model_config = ConfigDict(extra="forbid", frozen=True)
