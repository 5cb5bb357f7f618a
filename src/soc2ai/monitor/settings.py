"""``[monitor]`` section of soc2ai.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MonitorSettings(BaseModel):
    """Settings for soc2ai.monitor."""

    model_config = ConfigDict(extra="forbid", frozen=True)
