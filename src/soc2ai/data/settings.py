"""``[data]`` section of soc2ai.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DataSettings(BaseModel):
    """Settings for soc2ai.data."""

    model_config = ConfigDict(extra="forbid", frozen=True)
