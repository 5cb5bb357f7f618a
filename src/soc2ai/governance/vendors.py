"""The vendor register: LLM providers and other subprocessors, reviewed yearly (CC9.2).

``registers/vendors.yaml``::

    vendors:
      - name: OpenAI
        aliases: [openai, azure-openai]
        services: [chat completions, embeddings]
        data_categories: [customer prompts]
        subprocessor: true
        privacy_policy_listed: true
        soc2: {type: II, report_date: 2026-02-15, period_end: 2025-12-31, reference: "sha256:..."}
        dpa: {signed: 2025-06-01, reference: legal/openai-dpa.pdf}
        data_use: API inputs and outputs are not used for training
        no_training: true
        review: {last: 2026-03-01, next: 2027-03-01}
        incident_notification_sla_hours: 72
        owner: security@example.com
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from soc2ai.errors import ConfigError
from soc2ai.governance._yaml import (
    Day,
    LocatedError,
    PastDay,
    RegisterModel,
    read_yaml,
    register_remedy,
    unique,
    validate,
)
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult

# Python distributions of AI/vector vendors -> the vendor they send data to.
AI_SDKS: dict[str, str] = {
    "openai": "openai",
    "langchain-openai": "openai",
    "llama-index-llms-openai": "openai",
    "anthropic": "anthropic",
    "langchain-anthropic": "anthropic",
    "cohere": "cohere",
    "langchain-cohere": "cohere",
    "mistralai": "mistral",
    "langchain-mistralai": "mistral",
    "google-generativeai": "google",
    "google-genai": "google",
    "google-cloud-aiplatform": "google",
    "vertexai": "google",
    "langchain-google-genai": "google",
    "langchain-google-vertexai": "google",
    "groq": "groq",
    "together": "together",
    "replicate": "replicate",
    "fireworks-ai": "fireworks",
    "ai21": "ai21",
    "voyageai": "voyage",
    "huggingface-hub": "hugging face",
    "pinecone": "pinecone",
    "pinecone-client": "pinecone",
    "weaviate-client": "weaviate",
    "litellm": "litellm",
    "deepseek": "deepseek",
    "perplexityai": "perplexity",
}


class Soc2Report(RegisterModel):
    """The vendor's latest SOC 2 report."""

    # Not assumed: a report of unrecorded type is not evidence of operating effectiveness (Type II).
    type: Literal["I", "II"] | None = None
    report_date: PastDay
    period_end: PastDay
    period_start: PastDay | None = None
    reference: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Soc2Report:
        # A report covers a period that ended before it was issued; the other order is a typo that
        # would also make the staleness check read the wrong date.
        if self.period_end > self.report_date:
            raise LocatedError(f"period_end {self.period_end} is after report_date {self.report_date}",
                               ("period_end",))
        if self.period_start is not None and self.period_start > self.period_end:
            raise LocatedError(f"period_start {self.period_start} is after period_end {self.period_end}",
                               ("period_start",))
        return self


class Dpa(RegisterModel):
    """Data processing agreement."""

    signed: PastDay
    reference: str | None = None


class Review(RegisterModel):
    """Annual vendor review."""

    last: PastDay
    next: Day
    by: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Review:
        # A next review before the last one is a typo (a swapped year), not a schedule.
        if self.next < self.last:
            raise LocatedError(f"next review {self.next} is before the last review {self.last}", ("next",))
        return self


class Vendor(RegisterModel):
    """One vendor."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    services: list[str] = Field(min_length=1)
    data_categories: list[str] = Field(default_factory=list)
    subprocessor: bool
    privacy_policy_listed: bool = False
    soc2: Soc2Report | None = None
    dpa: Dpa | None = None
    data_use: str | None = None
    no_training: bool | None = None
    review: Review | None = None
    incident_notification_sla_hours: int | None = Field(default=None, gt=0)
    owner: str = Field(min_length=1)

    def keys(self) -> set[str]:
        """Normalised names this vendor answers to."""
        return {_norm(n) for n in [self.name, *self.aliases]}


class VendorsFile(RegisterModel):
    """The whole ``vendors.yaml``."""

    vendors: list[Vendor]

    @field_validator("vendors")
    @classmethod
    def _unique(cls, value: list[Vendor]) -> list[Vendor]:
        unique(value, "name", "vendor", _norm)
        # A provider or SDK is matched to a vendor by name or alias: one name under two vendors would
        # credit either entry's evidence (DPA, SOC 2 report) to it. An alias repeating its own vendor's
        # name is harmless.
        names = {_norm(v.name): v.name for v in value}
        owner: dict[str, str] = {}
        for i, vendor in enumerate(value):
            for j, alias in enumerate(vendor.aliases):
                key = _norm(alias)
                if names.get(key, vendor.name) != vendor.name:
                    raise LocatedError(f"alias {alias!r} is the name of vendor {names[key]!r}", (i, "aliases", j))
                if owner.get(key, vendor.name) != vendor.name:
                    raise LocatedError(f"alias {alias!r} is already an alias of vendor {owner[key]!r}",
                                       (i, "aliases", j))
                owner[key] = vendor.name
        return value


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def load_vendors(path: Path, *, today: date | None = None, as_of: bool = False) -> list[Vendor]:
    """Read and validate the register; missing or empty -> ConfigError."""
    if not path.is_file():
        raise ConfigError("vendor register not found (run `soc2ai init`)", file=str(path))
    data, node = read_yaml(path)
    if data is None:
        raise ConfigError("vendor register is empty", file=str(path), line=1, field="vendors")
    return validate(VendorsFile, data, node, str(path), today=today, as_of=as_of).vendors


def _requirement_name(spec: str) -> str:
    m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return re.sub(r"[-_.]+", "-", m.group(1).lower()) if m else ""


def dependency_names(root: Path) -> dict[str, str]:
    """Declared dependencies (normalised name -> file) from pyproject.toml and requirements*.txt."""
    found: dict[str, str] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot parse: {exc}", file=str(pyproject)) from exc
        project = data.get("project", {})
        specs: list[str] = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs.extend(extra)
        for group in data.get("dependency-groups", {}).values():
            specs.extend(s for s in group if isinstance(s, str))
        poetry = data.get("tool", {}).get("poetry", {})
        specs.extend(poetry.get("dependencies", {}).keys())
        for group in poetry.get("group", {}).values():
            specs.extend(group.get("dependencies", {}).keys())
        for spec in specs:
            if isinstance(spec, str) and (name := _requirement_name(spec)):
                found.setdefault(name, pyproject.name)
    for req in sorted(root.glob("requirements*.txt")):
        for line in req.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-") and (name := _requirement_name(line)):
                found.setdefault(name, req.name)
    return found


def ai_sdks(root: Path) -> dict[str, tuple[str, str]]:
    """AI SDKs among the dependencies: package -> (vendor, file)."""
    return {name: (AI_SDKS[name], file) for name, file in dependency_names(root).items() if name in AI_SDKS}


def _vendor_findings(v: Vendor, today: date, max_age: int) -> list[CheckResult]:
    out: list[CheckResult] = []

    def warn(check: str, msg: str, remedy: str) -> None:
        out.append(CheckResult(f"vendors.{check}", "CC9.2", WARN, f"{v.name}: {msg}", remedy))

    stale = timedelta(days=max_age)
    if v.soc2 is None:
        warn("soc2", "no SOC 2 report on file", "obtain the vendor's SOC 2 Type II report and record it")
    else:
        if v.soc2.type is None:
            warn("soc2", "SOC 2 report type not recorded (not taken as Type II)",
                 "record soc2.type: II (or I) from the report")
        elif v.soc2.type != "II":
            warn("soc2", "SOC 2 report is Type I (design only)", "obtain a Type II report")
        if today - v.soc2.report_date > stale:
            warn(
                "soc2_stale",
                f"SOC 2 report dated {v.soc2.report_date} is older than {max_age} days",
                "request the current report (or a bridge letter) and record it",
            )
        if today - v.soc2.period_end > stale:
            warn(
                "soc2_stale",
                f"SOC 2 report period ended {v.soc2.period_end}, over {max_age} days ago",
                "request the report covering the current period, or a bridge letter",
            )
    if v.dpa is None:
        warn("dpa", "no signed DPA recorded", "sign a data processing agreement and record its date")
    if v.review is None:
        warn("review", "no vendor review recorded", "review the vendor and record `review: {last:, next:}`")
    elif v.review.next < today:
        warn("review", f"vendor review overdue since {v.review.next}", "perform and record the annual review")
    if v.incident_notification_sla_hours is None:
        warn(
            "sla", "no incident notification SLA", "record the contractual breach-notification window (hours)"
        )
    if v.subprocessor and not v.privacy_policy_listed:
        warn("subprocessor", "subprocessor not listed in the privacy policy", "list it, then set the flag")
    return out


def check_vendors(
    config: Any,
    *,
    today: date,
    providers: Iterable[str] | None = None,
    project_root: Path | None = None,
    as_of: bool = False,
) -> list[CheckResult]:
    """The ``vendors check`` lines; unregistered gateway providers and AI SDKs are unmanaged vendors."""
    from soc2ai.governance._paths import ConfiguredProvider, gateway_providers, paths

    where = paths(config).vendors
    try:
        vendors = load_vendors(where, today=today, as_of=as_of)
    except ConfigError as exc:
        return [
            CheckResult("vendors.register", "CC9.2", FAIL, str(exc), register_remedy(exc))
        ]
    if not vendors:
        return [
            CheckResult(
                "vendors.register",
                "CC9.2",
                FAIL,
                f"{where}: no vendors registered",
                "register every LLM provider and subprocessor",
            )
        ]
    results: list[CheckResult] = []
    for v in vendors:
        results.extend(_vendor_findings(v, today, config.governance.soc2_max_age_days))
    known = set().union(*(v.keys() for v in vendors))
    configured = (
        [ConfiguredProvider(n, (n,)) for n in providers]
        if providers is not None
        else gateway_providers(config)
    )
    results.extend(
        CheckResult(
            "vendors.unmanaged",
            "CC9.2",
            WARN,
            f"unmanaged vendor: gateway provider {p.name!r} has no register entry",
            "add it to vendors.yaml (or list the name under an entry's aliases)",
        )
        for p in configured
        if not any(_norm(c) in known for c in p.candidates)
    )
    for pkg, (vendor, file) in sorted(ai_sdks(project_root or config.root).items()):
        if _norm(vendor) not in known and _norm(pkg) not in known:
            results.append(
                CheckResult(
                    "vendors.unmanaged",
                    "CC9.2",
                    WARN,
                    f"unmanaged vendor: {pkg} ({vendor}) in {file} has no register entry",
                    "add the vendor to vendors.yaml, or remove the dependency",
                )
            )
    results.insert(0, CheckResult("vendors.register", "CC9.2", OK, f"{len(vendors)} vendors registered"))
    return results


REPORT_COLUMNS = (
    "vendor",
    "services",
    "data_categories",
    "subprocessor",
    "soc2_type",
    "soc2_report_date",
    "soc2_period_end",
    "soc2_reference",
    "dpa_signed",
    "no_training",
    "review_last",
    "review_next",
    "incident_sla_hours",
    "owner",
    "findings",
)


def vendor_rows(vendors: list[Vendor], *, today: date, max_age: int = 365) -> list[dict[str, Any]]:
    """One row per vendor with the review evidence auditors ask for and its open findings."""
    rows = []
    for v in vendors:
        findings = [r.message.split(": ", 1)[1] for r in _vendor_findings(v, today, max_age)]
        rows.append(
            {
                "vendor": v.name,
                "services": ", ".join(v.services),
                "data_categories": ", ".join(v.data_categories),
                "subprocessor": v.subprocessor,
                "soc2_type": v.soc2.type if v.soc2 else None,
                "soc2_report_date": v.soc2.report_date if v.soc2 else None,
                "soc2_period_end": v.soc2.period_end if v.soc2 else None,
                "soc2_reference": v.soc2.reference if v.soc2 else None,
                "dpa_signed": v.dpa.signed if v.dpa else None,
                "no_training": v.no_training,
                "review_last": v.review.last if v.review else None,
                "review_next": v.review.next if v.review else None,
                "incident_sla_hours": v.incident_notification_sla_hours,
                "owner": v.owner,
                "findings": "; ".join(findings),
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_report(rows: list[dict[str, Any]], fmt: str, *, today: date) -> str:
    """The vendor review table as ``md``, ``csv`` or ``json``."""
    if fmt == "json":
        return orjson.dumps({"as_of": today, "vendors": rows}, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(r[k]) for k in REPORT_COLUMNS} for r in rows)
        return buf.getvalue()
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r} (md, csv, json)")
    lines = [
        f"# Vendor review (as of {today})",
        "",
        "| " + " | ".join(REPORT_COLUMNS) + " |",
        "|" + "---|" * len(REPORT_COLUMNS),
    ]
    lines.extend(
        "| " + " | ".join(_cell(r[k]).replace("|", "\\|") or "—" for k in REPORT_COLUMNS) + " |" for r in rows
    )
    return "\n".join(lines) + "\n"
