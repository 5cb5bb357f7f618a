"""``[governance]`` section of soc2ai.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GovernanceSettings(BaseModel):
    """Settings for soc2ai.governance."""

    model_config = ConfigDict(extra="forbid", frozen=True)
