"""CC8.1: the configuration going live is audit-logged when the gateway starts."""

from __future__ import annotations

from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness, records_of


def test_start_records_gateway_config_hash(env: Harness) -> None:
    """Each start appends a config_change record with the gateway config's content hash."""
    config = env.config()
    app, log, _ = env.app(config)
    with TestClient(app):
        pass
    with TestClient(app):
        pass
    starts = [c for c in records_of(log, "config_change") if c["target"] == "gateway"]
    assert [c["action"] for c in starts] == ["start", "start"]
    assert starts[0]["content_hash"].startswith("sha256:") and starts[0]["content_hash"] == starts[1]["content_hash"]
    assert "models=m,solo" in starts[0]["summary"]
