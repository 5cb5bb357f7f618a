"""``[gateway]`` section of soc2ai.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GatewaySettings(BaseModel):
    """Settings for soc2ai.gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)
