"""The readiness checks: one small function each, returning ``CheckResult`` lines (CC4.1, CC4.2).

Every check takes a :class:`Context` and returns one or more results; a check that cannot run (a
missing register, an unreadable ledger) FAILs with the reason instead of raising, so one broken item
never hides the others. Governance checks (vendors, prompts, models, incidents) are the governance
package's own functions; their lines are passed through unchanged.
"""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soc2ai.data.settings import INFERENCE_FLOOR_DAYS
from soc2ai.errors import Soc2AIError, VerificationError
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.monitor.settings import SEED_RULE_NAMES

if TYPE_CHECKING:
    from soc2ai.config import Config

US = 1_000_000
RESTRICTED_FLOOR_DAYS = 365


@dataclass
class Context:
    """What the checks share: config, the moment of the run, a read-only ledger, the state file."""

    config: Config
    now: datetime
    log: Any = None                       # AuditLog opened read-only, or None when it cannot be opened
    log_error: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    new_state: dict[str, Any] = field(default_factory=dict)
    sinks: list[Any] | None = None        # built sinks (tests inject them); None = build from config

    @property
    def now_us(self) -> int:
        return int(self.now.timestamp() * US)


Check = Callable[[Context], list[CheckResult]]


def _ledger_missing(ctx: Context, check_id: str, criterion: str) -> list[CheckResult]:
    return [CheckResult(check_id, criterion, FAIL, f"ledger cannot be opened: {ctx.log_error}",
                        "check ledger.store in soc2ai.toml, or run `soc2ai init`")]


def last_of_kind(log: Any, kind: str) -> Any:
    """The newest entry of ``kind`` (scanning back from the end in growing windows), or None."""
    size = log.size()
    stop, window = size, 256
    while stop > 0:
        start = max(0, stop - window)
        found = None
        for entry in log.entries(start=start, stop=stop, kind=kind):
            found = entry
        if found is not None:
            return found
        stop, window = start, window * 4
    return None


def check_logs_flowing(ctx: Context) -> list[CheckResult]:
    """The last inference record is at most ``max_inference_age_s`` old (the seed's check)."""
    if ctx.log is None:
        return _ledger_missing(ctx, "logs.flowing", "CC7.2")
    limit = ctx.config.monitor.readiness.max_inference_age_s
    last = last_of_kind(ctx.log, "inference")
    if last is None:
        return [CheckResult("logs.flowing", "CC7.2", FAIL, "no inference record in the ledger",
                            "route model calls through the gateway or soc2ai.instrument(client)")]
    age_s = (ctx.now_us - int(last.ts)) // US
    if age_s < -60:
        # A record from the future (a writer's clock ahead) would read as fresh until that time passes.
        return [CheckResult("logs.flowing", "CC7.2", WARN,
                            f"last inference record is {-age_s} s in the future (index {last.idx}): a writer's "
                            "clock is ahead, so this check cannot tell whether records still flow",
                            "synchronise the clocks of the gateway / instrumented hosts (NTP)")]
    if age_s > limit:
        return [CheckResult("logs.flowing", "CC7.2", FAIL,
                            f"last inference record is {age_s} s old (index {last.idx}; limit {limit} s)",
                            "check the gateway/instrumented service is running and can reach the ledger store")]
    return [CheckResult("logs.flowing", "CC7.2", OK, f"last inference record {max(age_s, 0)} s ago "
                        f"(index {last.idx}; limit {limit} s)")]


def check_ledger(ctx: Context) -> list[CheckResult]:
    """Full verification, signed checkpoint consistent with the one the last run saw."""
    if ctx.log is None:
        return _ledger_missing(ctx, "ledger.verify", "PI1.5")
    from soc2ai.ledger.note import open_checkpoint

    against = None
    seen = ctx.state.get("checkpoint")
    if seen:
        try:
            against = open_checkpoint(seen, ctx.log.verifiers)
        except VerificationError as exc:
            return [CheckResult("ledger.verify", "PI1.5", FAIL, f"checkpoint saved by the last run: {exc}",
                                "restore the readiness state file, or investigate key changes")]
    try:
        report = ctx.log.verify(against=against)
    except VerificationError as exc:
        where = f" at index {exc.index}" if exc.index is not None else ""
        return [CheckResult("ledger.verify", "PI1.5", FAIL, f"ledger fails verification{where}: {exc}",
                            "treat as an incident: restore the store from backup and compare with "
                            "`soc2ai log verify --against` an exported checkpoint")]
    except Soc2AIError as exc:
        return [CheckResult("ledger.verify", "PI1.5", FAIL, f"cannot verify: {exc}", "check the ledger store")]
    if report.latest is None:
        return [CheckResult("ledger.verify", "PI1.5", FAIL, "the ledger has no signed checkpoint yet",
                            "start the gateway (it seals and signs records) and rerun")]
    ctx.new_state["checkpoint"] = report.latest.note
    since = f", consistent with size {against.size} seen last run" if against is not None else ""
    root = base64.b64encode(report.root).decode()[:16]
    return [CheckResult("ledger.verify", "PI1.5", OK,
                        f"{report.size} records verify; checkpoint signed (root {root}…){since}")]


def check_spool(ctx: Context) -> list[CheckResult]:
    """The dead-letter spool is empty (everything acknowledged reached the store)."""
    if ctx.log is None:
        return _ledger_missing(ctx, "ledger.spool", "CC7.2")
    stats = ctx.log.stats()
    files = int(stats.get("spool_files") or stats.get("spool_pending") or 0)
    # A spool file that failed replay is kept renamed *.corrupt (never skipped): acknowledged records that
    # are not in the store. stats() counts only the *.spool files still waiting.
    spool_dir = ctx.config.path(ctx.config.ledger.spool_dir) / ctx.log.store.log_id
    corrupt = sorted(p.name for p in spool_dir.glob("*.corrupt")) if spool_dir.is_dir() else []
    if corrupt:
        return [CheckResult("ledger.spool", "CC7.2", WARN,
                            f"{len(corrupt)} quarantined spool file(s) failed replay: {', '.join(corrupt[:5])} "
                            f"in {spool_dir}", "acknowledged records are missing from the store: treat as an "
                            "incident, repair or replay the file, then remove it")]
    if files:
        return [CheckResult("ledger.spool", "CC7.2", WARN,
                            f"{files} spool file(s), {stats.get('spool_bytes', 0)} bytes waiting for the store",
                            "bring the store back; a running gateway replays the spool in order")]
    return [CheckResult("ledger.spool", "CC7.2", OK, "spool empty")]


def check_keys(ctx: Context) -> list[CheckResult]:
    """Signing and HMAC master key files exist and only their owner can read them (0600)."""
    from soc2ai.ledger.keys import MASTER_KEY, SIGNING_KEY

    keys_dir = ctx.config.path(ctx.config.ledger.keys_dir)
    problems = []
    for name in (SIGNING_KEY, MASTER_KEY):
        path = keys_dir / name
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            problems.append(f"{path} missing")
            continue
        if mode & 0o077:
            problems.append(f"{path} has mode {mode:04o}")
    if problems:
        return [CheckResult("keys.files", "CC6.1", FAIL, "; ".join(problems),
                            f"chmod 600 the key files in {keys_dir} (or run `soc2ai init` to create them)")]
    return [CheckResult("keys.files", "CC6.1", OK, f"{SIGNING_KEY} and {MASTER_KEY} present with 0600")]


def check_vendors(ctx: Context) -> list[CheckResult]:
    """Vendor register: reports current, DPA, reviews, no unregistered provider (governance)."""
    from soc2ai.governance.vendors import check_vendors as gov_check

    return gov_check(ctx.config, today=ctx.now.date())


def check_models(ctx: Context) -> list[CheckResult]:
    """Every production model has ticket, eval results and approval (governance)."""
    from soc2ai.governance.models import check_models as gov_check

    return gov_check(ctx.config, today=ctx.now.date())


def check_prompts(ctx: Context) -> list[CheckResult]:
    """Templates under version control and reviewed (governance), plus recent changes listed."""
    from soc2ai.governance.prompt_status import check_prompts as gov_check

    g = ctx.config.governance
    prompts_dir = ctx.config.path(g.prompts_dir)
    results = gov_check(prompts_dir, g, pr_export=ctx.config.path(g.pr_export) if g.pr_export else None)
    results.append(_prompt_changes(ctx, prompts_dir))
    return results


def _prompt_changes(ctx: Context, prompts_dir: Path) -> CheckResult:
    from soc2ai.governance import gitlog

    days = ctx.config.monitor.readiness.prompt_change_days
    if not prompts_dir.is_dir() or not gitlog.is_repo(prompts_dir):
        return CheckResult("prompts.changes", "CC8.1", WARN, f"{prompts_dir} is not under version control",
                           "keep prompts/ in git so every change has an author, a date and a review")
    since = (ctx.now - timedelta(days=days)).isoformat()
    try:
        repo = gitlog.repo_root(prompts_dir)
        rel = prompts_dir.resolve().relative_to(repo.resolve())
        commits = gitlog.log(repo, f"--since={since}", "--", str(rel) or ".")
    except (Soc2AIError, ValueError) as exc:
        return CheckResult("prompts.changes", "CC8.1", WARN, f"cannot read prompt history: {exc}",
                           "check the git repository holding prompts/")
    if not commits:
        return CheckResult("prompts.changes", "CC8.1", OK, f"no prompt changes in the last {days} days")
    shown = ", ".join(str(getattr(c, "sha", c))[:8] for c in commits[:10])
    more = f" (+{len(commits) - 10} more)" if len(commits) > 10 else ""
    return CheckResult("prompts.changes", "CC8.1", OK,
                       f"{len(commits)} prompt change(s) in the last {days} days: {shown}{more}")


def check_retention(ctx: Context) -> list[CheckResult]:
    """Inference logs kept >= 90 days; restricted data >= 12 months."""
    ledger_days = ctx.config.ledger.retention_days
    data_days = ctx.config.data.retention.ledger_days
    restricted = ctx.config.data.retention.label_days.get("restricted")
    out = []
    kept = min(ledger_days, data_days)
    if kept < INFERENCE_FLOOR_DAYS:
        out.append(CheckResult("retention.inference", "C1.2", FAIL,
                               f"inference logs kept {kept} days (< {INFERENCE_FLOOR_DAYS})",
                               "set ledger.retention_days and data.retention.ledger_days to at least 90"))
    else:
        out.append(CheckResult("retention.inference", "C1.2", OK, f"inference logs kept {kept} days"))
    # Restricted items of a content category with its own period (financial, health) keep exactly that
    # period whatever their label says, so it is held to the same floor.
    content = ctx.config.data.classification.content
    short = sorted(f"{cat} kept {days} days" for cat, days in ctx.config.data.retention.category_days.items()
                   if content.get(cat) == "restricted" and days < RESTRICTED_FLOOR_DAYS)
    if restricted is not None and restricted < RESTRICTED_FLOOR_DAYS:
        short.insert(0, f"restricted data kept {restricted} days")
    if short:
        out.append(CheckResult("retention.restricted", "C1.2", FAIL,
                               f"{'; '.join(short)} (< {RESTRICTED_FLOOR_DAYS})",
                               "set data.retention.label_days.restricted and data.retention.category_days "
                               "to at least 365"))
    elif restricted is not None:
        out.append(CheckResult("retention.restricted", "C1.2", OK, f"restricted data kept {restricted} days"))
    return out


def check_alert_rules(ctx: Context) -> list[CheckResult]:
    """The four seed alerts are configured and enabled."""
    rules = {r.name: r for r in ctx.config.monitor.effective_rules()}
    missing = [n for n in SEED_RULE_NAMES if n not in rules or not rules[n].enabled]
    if missing:
        return [CheckResult("alerts.rules", "CC7.2", FAIL, f"seed alert(s) missing or disabled: {', '.join(missing)}",
                            "enable monitor.default_rules or define rules with these names")]
    return [CheckResult("alerts.rules", "CC7.2", OK,
                        f"{len(SEED_RULE_NAMES)} seed alerts configured ({len(rules)} rules in all)")]


def check_sinks(ctx: Context) -> list[CheckResult]:
    """At least one sink; each reachable (a test event); nothing stuck or rejected in the outbox."""
    ms = ctx.config.monitor
    enabled = [s for s in ms.sinks if s.enabled]
    if not enabled and not ctx.sinks:
        return [CheckResult("alerts.sinks", "CC7.3", WARN, "no alert sink configured: alerts reach only the "
                            "ledger and the incident register", "add a [[monitor.sinks]] (webhook/syslog/OCSF)")]
    from soc2ai.monitor.outbox import Outbox
    from soc2ai.monitor.sinks import SinkError, build_sink

    sinks = list(ctx.sinks) if ctx.sinks is not None else []
    out: list[CheckResult] = []
    if ctx.sinks is None:
        for s in enabled:
            try:
                sinks.append(build_sink(s, ctx.config))
            except Soc2AIError as exc:
                out.append(CheckResult(f"alerts.sink.{s.name}", "CC7.3", FAIL, f"cannot set up: {exc}",
                                       "fix the sink's settings or its key file"))
    counts = Outbox(ctx.config.path(ms.outbox_dir)).counts()
    for sink in sinks:
        cid = f"alerts.sink.{sink.name}"
        try:
            if ms.readiness.probe_sinks:
                sink.probe()
        except SinkError as exc:
            out.append(CheckResult(cid, "CC7.3", FAIL, f"unreachable: {exc}",
                                   "bring the receiver up or fix its address; alerts wait in the outbox"))
            continue
        finally:
            sink.close()
        c = counts.get(sink.name, {"pending": 0, "failed": 0})
        if c["failed"]:
            out.append(CheckResult(cid, "CC7.3", WARN, f"{c['failed']} alert(s) rejected by the sink",
                                   f"inspect {ms.outbox_dir}/{sink.name}/failed/ and resend or acknowledge"))
        elif c["pending"]:
            out.append(CheckResult(cid, "CC7.3", WARN, f"{c['pending']} alert(s) waiting in the outbox",
                                   "run `soc2ai alerts watch` (or the gateway) so the outbox drains"))
        else:
            out.append(CheckResult(cid, "CC7.3", OK, "reachable" if ms.readiness.probe_sinks else "configured"))
    return out


# What the default policy guarantees, checked against the configured one: (finding type, stage, the
# actions that keep the guarantee, criterion, what is lost otherwise).
_SCREENING_FLOOR = (
    ("PROMPT_INJECTION", "pre", ("block",), "CC6.8", "prompt injections reach the model"),
    ("MODERATION_VIOLENCE", "pre", ("block",), "CC6.8", "harmful prompts reach the model"),
    ("MODERATION_VIOLENCE", "post", ("block",), "CC6.8", "harmful output reaches the user"),
    ("OPENAI_API_KEY", "pre", ("redact", "block"), "CC6.7", "secrets in prompts are sent to the provider"),
    ("EMAIL_ADDRESS", "post", ("redact", "block"), "CC6.7", "PII in model output reaches the user"),
    ("MEDIA_IMAGE", "pre", ("block",), "CC6.8",
     "images, audio and files are forwarded unscreened (marked in the audit record when flagged)"),
)


def check_screening(ctx: Context) -> list[CheckResult]:
    """The gateway screens, and its policy keeps the defaults' guarantees: injections and harmful content
    blocked, secrets and PII in output redacted, what the scanners cannot read (media) refused."""
    from soc2ai.scan.classify import category_of
    from soc2ai.scan.interface import Stage
    from soc2ai.scan.pipeline import Pipeline
    from soc2ai.scan.settings import CATEGORIES

    cfg = ctx.config
    if not cfg.gateway.screening or not cfg.scan.enabled:
        where = "[gateway] screening = false" if not cfg.gateway.screening else "[scan] enabled = false"
        return [CheckResult("screening.on", "CC6.8", WARN, f"{where}: prompts and outputs pass the gateway "
                            "unscreened", "turn screening on (the default)")]
    policy = Pipeline(cfg.scan, {})  # policy lookups only: no scanner is built
    switched_off = {"PROMPT_INJECTION": None if cfg.scan.injection else "[scan] injection = true",
                    "MODERATION_VIOLENCE": None if cfg.scan.moderation.provider != "off"
                    else '[scan.moderation] provider = "local"',
                    "OPENAI_API_KEY": None if cfg.scan.secrets else "[scan] secrets = true",
                    "EMAIL_ADDRESS": None if cfg.scan.pii else "[scan] pii = true"}
    out = []
    for entity, stage, keep, criterion, lost in _SCREENING_FLOOR:
        if remedy := switched_off.get(entity):
            out.append(CheckResult(f"screening.{entity.lower()}", criterion, WARN,
                                   f"{entity} at {stage}: scanner off, so {lost}", f"{remedy} (the default)"))
            continue
        # The representative type covers the category's own setting; a per-type key wins over the
        # category for that type, so each one of the same category must keep the guarantee too.
        keys = getattr(cfg.scan.policy, stage)
        category = category_of(entity)
        types = [entity, *sorted(k for k in keys if k != entity and k != "*" and k not in CATEGORIES
                                 and category_of(k) == category)]
        for etype in types:
            action = policy.action_for(etype, Stage(stage)).value
            if action in keep:
                continue
            key = etype if etype in keys else category
            out.append(CheckResult(f"screening.{etype.lower()}", criterion, WARN,
                                   f"{etype} at {stage}: {action}, so {lost}",
                                   f'[scan.policy.{stage}] {key} = "{keep[0]}" (the default)'))
    mod = cfg.scan.moderation
    if mod.provider == "openai" and mod.on_error == "open":
        out.append(CheckResult("screening.moderation_on_error", "CC6.8", WARN, '[scan.moderation] on_error = "open": '
                               "when the moderation API fails, text goes through unmoderated (only flagged)",
                               '[scan.moderation] on_error = "closed" (the default)'))
    if cfg.gateway.stream_mode == "passthrough":
        out.append(CheckResult("screening.stream_mode", "CC6.7", WARN, "[gateway] stream_mode = \"passthrough\": "
                               "streamed output reaches the user before the post-scan, so PII and secrets in "
                               "it are not redacted", '[gateway] stream_mode = "buffer" (the default)'))
    return out or [CheckResult("screening.policy", "CC6.8", OK, "screening on: injections and harmful content "
                               "blocked, secrets and PII in output redacted, media refused")]


def check_incidents(ctx: Context) -> list[CheckResult]:
    """No incident open past its SLA (governance)."""
    from soc2ai.governance.incidents import check_incidents as gov_check

    return gov_check(ctx.config, now=ctx.now)


CHECKS: tuple[tuple[str, Check], ...] = (
    ("logs", check_logs_flowing),
    ("ledger", check_ledger),
    ("spool", check_spool),
    ("keys", check_keys),
    ("screening", check_screening),
    ("vendors", check_vendors),
    ("prompts", check_prompts),
    ("models", check_models),
    ("retention", check_retention),
    ("alerts", check_alert_rules),
    ("sinks", check_sinks),
    ("incidents", check_incidents),
)


def utcnow() -> datetime:
    """The default clock."""
    return datetime.now(UTC)
