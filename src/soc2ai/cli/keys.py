"""``soc2ai keys create|list|revoke``: gateway API keys with roles (shown once, stored hashed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors, print_json
from soc2ai.errors import UsageError
from soc2ai.gateway.keys import KeyStore
from soc2ai.gateway.settings import ROLES
from soc2ai.ledger import AuditLog

app = typer.Typer(help="Gateway API keys: create (shown once), list, revoke.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(value: str, now: datetime) -> int:
    """``30d`` / ``12h`` / an ISO date or datetime (UTC if naive) → microseconds since the epoch."""
    m = _DURATION.match(value.strip())
    if m:
        when = now + timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise UsageError(f"--expires {value!r}: use a duration like 30d/12h or an ISO date") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    if when <= now:
        raise UsageError(f"--expires {value!r} is in the past")
    return int(when.timestamp() * 1_000_000)


def _fmt(us: int | None) -> str:
    return "" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M")


@app.command("create")
@handle_errors
def create(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    user: str = typer.Option(..., "--user", help="Who the key belongs to (recorded as a subject reference)."),
    models: list[str] = typer.Option(None, "--models", help="Restrict to these model aliases (repeatable)."),
    expires: str | None = typer.Option(None, "--expires", help="30d, 12h, or an ISO date."),
    classification: str | None = typer.Option(None, "--classification",
                                              help="Default data classification of this key's requests."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Create a key. The secret is printed once and cannot be shown again."""
    cfg = get_config(config)
    expires_us = parse_expiry(expires, datetime.now(UTC)) if expires else None
    with AuditLog.open(cfg) as log:
        store = KeyStore(cfg.path(cfg.gateway.keys_db), log=log)
        try:
            secret, key = store.create(role=role, user_id=user, models=models or [], expires_us=expires_us,
                                       classification=classification)
        finally:
            store.close()
    if json_out:
        print_json({"key": secret, "id": key.id, "role": key.role, "user": key.user_id,
                    "models": list(key.models), "expires_us": key.expires_us})
        return
    console.print(f"created key [bold]{key.id}[/] (role {key.role}, user {key.user_id})")
    console.print("secret (shown once, store it now):")
    console.print(secret, soft_wrap=True, highlight=False)


@app.command("list")
@handle_errors
def list_keys(config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """List keys (ids, roles, state; never secrets)."""
    cfg = get_config(config)
    store = KeyStore(cfg.path(cfg.gateway.keys_db))
    now = store.clock()
    keys = store.list()
    store.close()
    if json_out:
        print_json([k.public(now) for k in keys])
        return
    table = Table("id", "role", "user", "models", "state", "created", "expires")
    for k in keys:
        table.add_row(k.id, k.role, k.user_id, ",".join(k.models) or "*", k.state(now), _fmt(k.created_us),
                      _fmt(k.expires_us))
    console.print(table)


@app.command("revoke")
@handle_errors
def revoke(key_id: str = typer.Argument(..., help="The key id (from `soc2ai keys list`)."),
           config: Path | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """Revoke a key; running gateways refuse it within a second."""
    cfg = get_config(config)
    with AuditLog.open(cfg) as log:
        store = KeyStore(cfg.path(cfg.gateway.keys_db), log=log)
        try:
            key = store.revoke(key_id)
        finally:
            store.close()
    if json_out:
        print_json(key.public(key.revoked_us or 0))
        return
    console.print(f"revoked key [bold]{key.id}[/] ({key.role}, {key.user_id})")
