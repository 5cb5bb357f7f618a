"""``[monitor]`` section of soc2ai.toml: alert rules, sinks, outbox, cursor, readiness thresholds.

Example::

    [monitor]
    default_rules = true                 # ship the seed rules (overridden by name below)

    [[monitor.rules]]
    name = "token_spike"
    kind = "volume"                      # detector | volume | error_rate | count
    severity = "MEDIUM"
    response = "alert_oncall"
    params = { metric = "tokens", group_by = "key", window_s = 3600, multiplier = 3, min_volume = 20000 }

    [[monitor.sinks]]
    name = "oncall"
    type = "webhook"                     # jsonl | webhook | syslog | ocsf | otel
    url = "https://hooks.example.com/soc2ai"
    format = "pagerduty"                 # json | slack | pagerduty
    routing_key_file = ".soc2ai/keys/pagerduty"

Rule parameters are checked per kind here, so a bad rule fails when the config loads, naming the rule
and the parameter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from soc2ai._validation import LocatedError, unique

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SEVERITIES: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
RuleKind = Literal["detector", "volume", "error_rate", "count"]
# block_and_log / redact_and_alert are enforced by the gateway pipeline; the monitor records and routes.
Response = Literal["log", "block_and_log", "redact_and_alert", "alert_oncall", "page_oncall", "open_incident"]
ErrorSignal = Literal["status", "error", "fallback", "block"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorParams(_Params):
    """Fire when an inference record carries a scanner result matching every given criterion."""

    stage: Literal["pre", "post", "any"] = "any"
    # Finding types; "*" = any, "PREFIX*" = every type starting with PREFIX.
    types: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    scanners: list[str] = Field(default_factory=list)   # empty = any scanner
    decisions: list[str] = Field(default_factory=list)  # empty = any decision (allow/flag/redact/block)
    group_by: Literal["key", "user", "model", "tenant", "none"] = "key"


class VolumeParams(_Params):
    """Tokens or requests per group per window against the mean of the trailing windows."""

    metric: Literal["tokens", "input_tokens", "output_tokens", "requests"] = "tokens"
    group_by: Literal["key", "user", "model", "tenant", "none"] = "key"
    window_s: int = Field(default=3600, ge=1, le=31 * 86_400)
    baseline_windows: int = Field(default=24, ge=1, le=10_000)
    # Windows of history a group needs before it can alert (a brand-new key has no baseline).
    min_history: int = Field(default=3, ge=1)
    multiplier: float = Field(default=3.0, gt=1.0)
    # Below this a window never alerts, so quiet keys do not page.
    min_volume: int = Field(default=10_000, ge=1)

    # A field validator (baseline_windows is declared, so validated, first) rather than a model one, so
    # the error names params.min_history instead of a location-less "params.params".
    @field_validator("min_history")
    @classmethod
    def _history_fits(cls, value: int, info: ValidationInfo) -> int:
        windows = info.data.get("baseline_windows")
        if windows is not None and value > windows:
            raise ValueError(f"must not exceed baseline_windows ({windows})")
        return value


_DEFAULT_SIGNALS: list[ErrorSignal] = ["status", "error", "fallback"]


class ErrorRateParams(_Params):
    """Share of failing calls over a sliding window."""

    window_s: int = Field(default=300, ge=1, le=86_400)
    threshold: float = Field(default=0.05, gt=0.0, lt=1.0)  # fire when errors / calls > threshold
    min_requests: int = Field(default=20, ge=1)
    signals: list[ErrorSignal] = Field(default_factory=lambda: _DEFAULT_SIGNALS.copy(), min_length=1)
    group_by: Literal["provider", "model", "key", "none"] = "provider"


class CountParams(_Params):
    """Records of ``record_kind`` whose fields equal ``match`` reach ``threshold`` within ``window_s``."""

    record_kind: str = "inference"
    match: dict[str, str | int | bool | None] = Field(default_factory=dict)
    window_s: int = Field(default=300, ge=1, le=31 * 86_400)
    threshold: int = Field(default=10, ge=1)
    group_by: Literal["key", "user", "model", "tenant", "provider", "none"] = "none"


PARAMS_BY_KIND: dict[str, type[_Params]] = {
    "detector": DetectorParams,
    "volume": VolumeParams,
    "error_rate": ErrorRateParams,
    "count": CountParams,
}


class RuleSettings(BaseModel):
    """One alert rule. ``params`` is validated against the model of its ``kind``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    kind: RuleKind
    severity: Severity
    response: Response
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # The same rule and group alert at most once per dedup window; repeats are counted on the next alert.
    dedup_s: int = Field(default=300, ge=0, le=31 * 86_400)
    # Sink names this rule goes to; empty = every sink whose min_severity it reaches.
    sinks: list[str] = Field(default_factory=list)

    @field_validator("severity", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _params_for_kind(self) -> RuleSettings:
        self.typed_params()
        return self

    def typed_params(self) -> _Params:
        """``params`` as the model of this rule's kind; ValueError names the rule and the parameter."""
        try:
            return PARAMS_BY_KIND[self.kind].model_validate(self.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = str(err["msg"]).removeprefix("Value error, ")
            # The location goes only into the LocatedError: soc2ai.toml errors (parse_config) and rules
            # given as data (monitor.engine.parse_rules) put it in the field, with its line, so repeating
            # it in the text would print it twice. The rule name stays: the field has only its index.
            raise LocatedError(f"rule {self.name!r}: {msg}", ("params", *err["loc"])) from None


class SinkSettings(BaseModel):
    """Where alerts go. Which fields apply depends on ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    type: Literal["jsonl", "webhook", "syslog", "ocsf", "otel"]
    min_severity: Severity = "LOW"
    enabled: bool = True
    path: str | None = None             # jsonl / ocsf: file ("-" = stdout)
    url: str | None = None              # webhook / ocsf: HTTP(S) endpoint
    format: Literal["json", "slack", "pagerduty"] = "json"  # webhook payload
    routing_key_file: str | None = None  # pagerduty: file holding the integration key (0600)
    headers: dict[str, str] = Field(default_factory=dict)
    host: str = "127.0.0.1"              # syslog
    port: int = Field(default=514, ge=1, le=65_535)
    protocol: Literal["udp", "tcp"] = "udp"
    facility: int = Field(default=13, ge=0, le=23)  # 13 = log audit
    app_name: str = "soc2ai"
    endpoint: str | None = None          # otel: OTLP/gRPC endpoint; none = the SDK's configured exporter
    timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("min_severity", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _needs(self) -> SinkSettings:
        # LocatedError: the error names the field (monitor.sinks.<n>.url), not only the sink.
        if self.type == "jsonl" and not self.path:
            raise LocatedError(f"sink {self.name!r} of type jsonl needs path (\"-\" for stdout)", ("path",))
        if self.type == "webhook" and not self.url:
            raise LocatedError(f"sink {self.name!r} of type webhook needs url", ("url",))
        if self.type == "ocsf" and not (self.path or self.url):
            raise LocatedError(f"sink {self.name!r} of type ocsf needs path or url", ("path",))
        if self.url and not self.url.startswith(("http://", "https://")):
            raise LocatedError(f"sink {self.name!r}: url must start with http:// or https://", ("url",))
        if self.format == "pagerduty" and not self.routing_key_file:
            raise LocatedError(f"sink {self.name!r}: pagerduty format needs routing_key_file",
                               ("routing_key_file",))
        return self


class SuppressionSettings(BaseModel):
    """A maintenance window: matching rules do not alert between ``start`` and ``end`` (record time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    start: datetime
    end: datetime
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SuppressionSettings:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise LocatedError("start and end need a timezone (e.g. 2026-01-01T00:00:00Z)",
                               ("start" if self.start.tzinfo is None else "end",))
        if self.end <= self.start:
            raise LocatedError("end must be after start", ("end",))
        return self


class ReadinessSettings(BaseModel):
    """Thresholds of ``soc2ai check``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The seed's check: the last inference record is at most this old.
    max_inference_age_s: int = Field(default=300, ge=1)
    # Prompt changes in this many days are listed.
    prompt_change_days: int = Field(default=30, ge=1)
    # The checkpoint the last run saw (consistency is checked against it on the next run).
    state_file: str = ".soc2ai/readiness.json"
    # Probe every sink with a test event.
    probe_sinks: bool = True


def seed_rules() -> list[RuleSettings]:
    """The seed's four AI alerts plus the content-policy rule (a documented violation is evidence)."""
    # The scanners' personal-data finding types (soc2ai.scan.classify), financial and health ones included.
    pii_types = ["EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "IP_ADDRESS", "PERSON", "LOCATION", "NRP", "US_ITIN",
                 "UK_NHS", "DE_TAX_ID", "FR_NIR", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE", "NL_BSN", "IN_AADHAAR",
                 "IN_PAN", "BR_CPF", "CA_SIN", "AU_TFN", "CREDIT_CARD", "IBAN_CODE", "MEDICAL_RECORD",
                 "HEALTH_CONDITION", "US_PASSPORT", "US_DRIVER_LICENSE", "US_BANK_NUMBER", "DATE_OF_BIRTH"]
    return [
        RuleSettings(name="prompt_injection", kind="detector", severity="HIGH", response="block_and_log",
                     description="Prompt injection attempt detected on the input",
                     params={"stage": "pre", "types": ["PROMPT_INJECTION"], "group_by": "key"}),
        RuleSettings(name="token_volume_spike", kind="volume", severity="MEDIUM", response="alert_oncall",
                     description="Output volume above 3x the trailing hourly baseline",
                     params={"metric": "tokens", "group_by": "key", "window_s": 3600,
                             "baseline_windows": 24, "multiplier": 3.0, "min_volume": 10_000}),
        RuleSettings(name="pii_in_output", kind="detector", severity="HIGH", response="redact_and_alert",
                     description="Personal data detected in a model response",
                     params={"stage": "post", "types": pii_types, "group_by": "key"}),
        RuleSettings(name="provider_error_rate", kind="error_rate", severity="MEDIUM", response="page_oncall",
                     description="Model API error rate above 5% over 5 minutes",
                     params={"window_s": 300, "threshold": 0.05, "min_requests": 20,
                             "signals": ["status", "error", "fallback"], "group_by": "provider"}),
        RuleSettings(name="content_policy_violation", kind="detector", severity="MEDIUM",
                     response="open_incident",
                     description="Content blocked by moderation (documented as an incident)",
                     params={"stage": "any", "types": ["MODERATION*"], "decisions": ["block"],
                             "group_by": "key"}),
    ]


# The seed alerts `soc2ai check` insists on (by rule name, or by an enabled rule of the same shape).
SEED_RULE_NAMES: tuple[str, ...] = ("prompt_injection", "token_volume_spike", "pii_in_output",
                                    "provider_error_rate")


class MonitorSettings(BaseModel):
    """Settings for soc2ai.monitor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_rules: bool = True
    rules: list[RuleSettings] = Field(default_factory=list)
    sinks: list[SinkSettings] = Field(default_factory=list)
    suppressions: list[SuppressionSettings] = Field(default_factory=list)
    # Alerts waiting for a sink, one file each, until delivered (a sink that is down loses nothing).
    outbox_dir: str = ".soc2ai/monitor/outbox"
    # `soc2ai alerts watch`: ledger position and engine state (baselines, windows), written atomically.
    cursor_file: str = ".soc2ai/monitor/cursor.json"
    # Retries: exponential backoff from retry_min_s, capped at retry_max_s, forever (nothing is dropped).
    retry_min_s: float = Field(default=0.5, gt=0, le=3600)
    retry_max_s: float = Field(default=60.0, gt=0, le=86_400)
    # Incidents are opened for alerts at or above this severity (and for response "open_incident").
    incident_min_severity: Severity = "HIGH"
    readiness: ReadinessSettings = ReadinessSettings()

    # Field validators raising LocatedError (as in the register files), so a duplicate names
    # monitor.rules.<n>.name of the second entry rather than the whole [monitor] section.
    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, value: list[RuleSettings]) -> list[RuleSettings]:
        unique(value, "name", "rule name")
        return value

    @field_validator("sinks")
    @classmethod
    def _unique_sinks(cls, value: list[SinkSettings]) -> list[SinkSettings]:
        unique(value, "name", "sink name")
        return value

    @model_validator(mode="after")
    def _known_sinks(self) -> MonitorSettings:
        sinks = {s.name for s in self.sinks}
        for n, rule in enumerate(self.rules):
            for i, sink in enumerate(rule.sinks):
                if sink not in sinks:
                    raise LocatedError(f"rule {rule.name!r}: unknown sink {sink!r}", ("rules", n, "sinks", i))
        return self

    def effective_rules(self) -> list[RuleSettings]:
        """Seed rules (when ``default_rules``) overridden by name by the configured ones, then the rest."""
        own = {r.name: r for r in self.rules}
        out = [own.pop(r.name, r) for r in seed_rules()] if self.default_rules else []
        out.extend(r for r in self.rules if r.name in own)
        return out
