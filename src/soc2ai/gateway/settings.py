"""``[gateway]`` section of soc2ai.toml.

Example::

    [gateway]
    host = "127.0.0.1"
    port = 8787
    default_classification = "internal"

    [gateway.providers.openai]
    kind = "openai"                      # openai | anthropic | azure | openai_compatible
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"       # name of the env var, never the key itself

    [gateway.providers.local]
    kind = "openai_compatible"
    base_url = "http://127.0.0.1:11434/v1"

    [gateway.models]                     # alias -> ordered fallback chain "provider:model"
    "gpt-4o-mini" = ["openai:gpt-4o-mini", "local:llama3.1:8b"]

    [gateway.roles]                      # role -> model aliases it may call ("*" = all)
    inference = ["*"]

Secrets are resolved through :func:`soc2ai.config.secret_from_env` at app start, never stored here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from soc2ai._validation import LocatedError

Classification = Literal["public", "internal", "confidential", "restricted"]
CLASSIFICATIONS: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
ROLES: tuple[str, ...] = ("inference", "admin", "auditor")


class ProviderSettings(BaseModel):
    """One upstream: where it is and which env var holds its API key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["openai", "anthropic", "azure", "openai_compatible"] = "openai_compatible"
    base_url: str
    api_key_env: str | None = None
    # Azure OpenAI only: the api-version query parameter.
    api_version: str = "2024-10-21"
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class CircuitBreakerSettings(BaseModel):
    """Skip a provider after ``failure_threshold`` consecutive failures; probe it after ``reset_after_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    failure_threshold: int = Field(default=5, ge=1, le=10_000)
    reset_after_s: float = Field(default=30.0, gt=0, le=86_400)


class RateLimitSettings(BaseModel):
    """Per-key limits over a sliding minute; ``redis`` shares them across gateway processes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    requests_per_minute: int = Field(default=600, ge=1)
    tokens_per_minute: int = Field(default=200_000, ge=1)
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"


class AbuseSettings(BaseModel):
    """Suspend a key that keeps hitting limits or keeps being blocked, for ``suspend_s`` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    window_s: float = Field(default=300.0, gt=0)
    max_rate_limited: int = Field(default=50, ge=1)
    max_blocked: int = Field(default=5, ge=1)
    suspend_s: float = Field(default=900.0, gt=0)


class CacheSettings(BaseModel):
    """Completion cache keyed by the request hash; TTL per data classification (0 = never cached)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: Literal["off", "sqlite", "redis"] = "off"
    path: str = ".soc2ai/cache.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    ttl_s: dict[str, int] = Field(default_factory=lambda: {
        "public": 86_400, "internal": 3_600, "confidential": 300, "restricted": 0})

    # LocatedError: the error names gateway.cache.ttl_s.<class> and its line, not the whole table.
    @field_validator("ttl_s")
    @classmethod
    def _known_classes(cls, value: dict[str, int]) -> dict[str, int]:
        for name, ttl in value.items():
            if name not in CLASSIFICATIONS:
                raise LocatedError(f"unknown classification {name!r}; use one of {', '.join(CLASSIFICATIONS)}",
                                   (name,))
            if ttl < 0:
                raise LocatedError(f"ttl for {name!r} must be >= 0", (name,))
        return value


class OtelSettings(BaseModel):
    """OpenTelemetry spans with GenAI semantic-convention attributes; never raw content by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    # OTLP/gRPC endpoint for `soc2ai gateway`; empty = use the process's global tracer provider.
    endpoint: str = ""
    service_name: str = "soc2ai-gateway"
    # Unsafe: puts prompts and outputs into spans. Off unless you accept that your tracing backend holds them.
    unsafe_capture_content: bool = False


class GatewaySettings(BaseModel):
    """Settings for soc2ai.gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65_535)
    keys_db: str = ".soc2ai/keys.db"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    default_classification: Classification = "internal"
    # "buffer": streamed output is collected, post-scanned (and redacted) before the client sees it.
    # "passthrough": chunks go out as they arrive; the post-scan runs on the assembled text at the end and
    # can only flag/record, not un-send. See docs/gateway.md.
    stream_mode: Literal["buffer", "passthrough"] = "buffer"
    # Scan prompts/outputs with soc2ai.scan using the [scan] section.
    screening: bool = True
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, list[str]] = Field(default_factory=dict)
    roles: dict[str, list[str]] = Field(default_factory=lambda: {"inference": ["*"], "admin": [], "auditor": []})
    breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    abuse: AbuseSettings = AbuseSettings()
    cache: CacheSettings = CacheSettings()
    otel: OtelSettings = OtelSettings()

    # LocatedError: the error names gateway.roles.<role> and its line, not the whole [gateway.roles].
    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role in value:
            if role not in ROLES:
                raise LocatedError(f"unknown role {role!r}; roles are {', '.join(ROLES)}", (role,))
        return value

    @model_validator(mode="after")
    def _chains_name_providers(self) -> GatewaySettings:
        # LocatedError: the error names gateway.models.<alias>.<n>, the hop at fault, not [gateway].
        for alias, chain in self.models.items():
            if not chain:
                raise LocatedError("the fallback chain is empty", ("models", alias))
            for n, target in enumerate(chain):
                provider, sep, model = target.partition(":")
                if not sep or not model:
                    raise LocatedError(f"{target!r} must be 'provider:model'", ("models", alias, n))
                if provider not in self.providers:
                    raise LocatedError(f"provider {provider!r} is not in [gateway.providers]",
                                       ("models", alias, n))
        return self
