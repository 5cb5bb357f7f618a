"""``soc2ai init``: scaffold soc2ai.toml, keys, prompts/ and registers/ that pass every check."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import typer

from soc2ai.cli._common import console, handle_errors, print_json
from soc2ai.config import DEFAULT_CONFIG_NAME, parse_config
from soc2ai.errors import ConfigError
from soc2ai.governance import write_examples
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys, load_signer
from soc2ai.ledger.note import Verifier
from soc2ai.ledger.records import ConfigChangeRecord

CONFIG_TEMPLATE = """\
# soc2ai configuration. Every section is optional; the defaults are shown.
# Docs: docs/architecture.md and docs/controls.md in the soc2ai repository.

[project]
name = "{name}"                  # names the ledger (checkpoint origin) and the signing key

[ledger]
store = "sqlite:///.soc2ai/audit.db"   # or "postgresql://user@host/db"
keys_dir = ".soc2ai/keys"              # signing + master keys (0600); never commit this directory
spool_dir = ".soc2ai/spool"            # dead-letter spool while the store is unavailable
witness_dir = ".soc2ai/witness"        # latest signed checkpoint, to detect a rolled-back store
hash_mode = "hmac-sha256"              # per-subject keyed hashes; "sha256" is weaker (guessable prompts)
retain_payloads = false                # true: keep prompts/responses encrypted per subject (PI1 reconstruction)
retention_days = 365
sealer = "thread"                      # least CPU at a few hundred records/s (a gateway); "process": sealer in a
                                       # child process, for high rates (1.5-2.3x the sustained throughput, no GIL
                                       # wait for callers, a crashed writer's handed-over records still sealed)

# Alert sinks (the four seed alert rules and the content-policy rule are on by default).
# Add webhook (Slack / PagerDuty), syslog (RFC 5424) or OpenTelemetry sinks for your SIEM; see docs/monitoring.md.
[[monitor.sinks]]
name = "alerts-file"
type = "jsonl"
path = ".soc2ai/alerts.jsonl"

[[monitor.sinks]]
name = "siem-ocsf"
type = "ocsf"                          # OCSF Detection Finding (2004) lines for SIEM ingestion
path = ".soc2ai/alerts.ocsf.jsonl"
"""


def init_project(directory: Path, *, name: str = "", force: bool = False) -> tuple[list[str], Verifier]:
    """Scaffold a project (config, keys, registers, the ledger's first record); return created paths and key."""
    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    project = name or "".join(c if c.isalnum() or c in "-_." else "-" for c in root.name) or "soc2ai"
    cfg_path = root / DEFAULT_CONFIG_NAME
    if cfg_path.exists() and not force:
        raise ConfigError("exists (use --force to overwrite)", file=str(cfg_path))
    cfg_path.write_text(CONFIG_TEMPLATE.format(name=project))
    config = parse_config(cfg_path.read_text(), source=str(cfg_path), root=root)
    keys_dir = config.path(config.ledger.keys_dir)
    created: list[str] = [str(cfg_path)]
    if (keys_dir / "signing.key").exists():
        verifier = load_signer(keys_dir).verifier
    else:
        verifier = generate_keys(keys_dir, project)
        created += [str(keys_dir / "signing.key"), str(keys_dir / "master.key")]
    created += [str(p) for p in write_examples(root, today=datetime.now(UTC).date())]
    # Create the ledger now, with its first record, so every later command finds a signed log.
    with AuditLog.open(config) as log:
        log.append(ConfigChangeRecord(target="soc2ai.toml", action="init", actor="soc2ai init",
                                      summary=f"project {project} initialised",
                                      content_hash="sha256:" + hashlib.sha256(cfg_path.read_bytes()).hexdigest()))
    gitignore = root / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if ".soc2ai/" not in lines:
        gitignore.write_text("\n".join([*lines, ".soc2ai/"]) + "\n")
    return created, verifier


def register(app: typer.Typer) -> None:
    """Add ``init`` to the app."""

    @app.command("init")
    @handle_errors
    def init(
        directory: Path = typer.Argument(Path("."), help="Project directory to scaffold."),
        name: str = typer.Option("", "--name", help="Project name (default: the directory name)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing soc2ai.toml."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Create soc2ai.toml, signing and master keys, and example prompts/registers that pass every check."""
        created, verifier = init_project(directory, name=name, force=force)
        if json_out:
            print_json({"created": created, "public_key": verifier.encode()})
            return
        for p in created:
            console.print(f"created {p}")
        console.print("\nPublic key for auditors (verifies every checkpoint; safe to share):")
        console.print(f"  [bold]{verifier.encode()}[/]")
