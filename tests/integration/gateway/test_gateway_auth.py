"""Auth matrix: no key, bad key, revoked, expired, suspended, wrong role, model not allowed, classification."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from soc2ai.testing.gateway import Harness, inference_records, records_of

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _post(client: TestClient, key: str | None, body: dict[str, object] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    h = dict(headers or {})
    if key is not None:
        h["authorization"] = f"Bearer {key}"
    r = client.post("/v1/chat/completions", json=body or CHAT, headers=h)
    return r.status_code, r.json()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000_000

    def __call__(self) -> int:
        return self.now


def test_auth_matrix(env: Harness) -> None:
    """Each kind of bad credential gets its status, in the OpenAI error shape, and an access record."""
    cfg = env.config(tables='[gateway.roles]\ninference = ["m"]\nadmin = []\nauditor = []')
    clock = _Clock()
    app, log, keys = env.app(cfg, clock=clock)
    keys.clock = clock
    good, _ = keys.create(role="inference", user_id="u1")
    revoked, rk = keys.create(role="inference", user_id="u2")
    keys.revoke(rk.id)
    expired, _ = keys.create(role="inference", user_id="u3", expires_us=clock.now + 10)
    auditor, _ = keys.create(role="auditor", user_id="u4")
    limited, _ = keys.create(role="inference", user_id="u5", models=["m"])
    clock.now += 1_000_000
    with TestClient(app) as client:
        cases = {
            "none": (_post(client, None), 401),
            "bad-format": (_post(client, "sk-whatever"), 401),
            "unknown-id": (_post(client, "s2a_000000000000_" + "x" * 43), 401),
            "wrong-secret": (_post(client, good[:-4] + "AAAA"), 401),
            "revoked": (_post(client, revoked), 401),
            "expired": (_post(client, expired), 401),
            "wrong-role": (_post(client, auditor), 403),
            "model-not-in-role": (_post(client, good, {**CHAT, "model": "solo"}), 403),
            "model-not-in-key": (_post(client, limited, {**CHAT, "model": "solo"}), 403),
            "ok": (_post(client, good), 200),
        }
        x_api_key = client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": good}).status_code
    for name, ((status, body), want) in cases.items():
        assert status == want, name
        if want != 200:
            err = body["error"]
            assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, name
    assert x_api_key == 200
    denies = [r for r in records_of(log, "access") if r["decision"] == "deny"]
    assert len(denies) == 9
    assert {r["status"] for r in denies} == {401, 403}
    assert all("u1" not in str(r) for r in denies)
    # A key whose secret matched (revoked, expired) is named in its denial, so an auditor can tell
    # which key kept calling; an unknown or wrong secret names none.
    named = {r["reason"]: r["key_id"] for r in denies if r["reason"] in ("API key revoked", "API key expired")}
    assert named["API key revoked"] == rk.id and named["API key expired"] is not None
    assert all(r["key_id"] is None for r in denies if r["reason"] == "invalid API key")
    changes = [c for c in records_of(log, "config_change") if c["target"] != "gateway"]
    assert [c["action"] for c in changes] == ["create", "create", "revoke", "create", "create", "create"]


def test_revocation_reaches_running_gateway(env: Harness) -> None:
    """A key revoked by another KeyStore (the CLI) is refused by a running gateway."""
    cfg = env.config()
    app, _log, keys = env.app(cfg)
    secret, key = keys.create(role="inference", user_id="u")
    with TestClient(app) as client:
        assert _post(client, secret)[0] == 200
        other = env.keys(cfg, None)
        other.revoke(key.id)
        other.close()
        assert _post(client, secret)[0] == 401


def test_keys_file_is_private(env: Harness) -> None:
    """keys.db is created 0600 and holds digests, never the secret."""
    cfg = env.config()
    keys = env.keys(cfg, None)
    secret, _ = keys.create(role="inference", user_id="u")
    path = Path(cfg.path(cfg.gateway.keys_db))
    assert path.stat().st_mode & 0o777 == 0o600
    assert secret.encode() not in path.read_bytes()
    keys.close()


def test_unknown_model_is_404_in_shape(env: Harness) -> None:
    """An alias the gateway does not serve is a 404 model_not_found."""
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app) as client:
        status, body = _post(client, secret, {**CHAT, "model": "nope"})
    assert status == 404
    assert body["error"]["code"] == "model_not_found"  # type: ignore[index]


def test_classification_refused_by_model_register(env: Harness) -> None:
    """A model the register does not allow for the request's data class is refused (403) and recorded."""
    reg = env.tmp / "registers"
    reg.mkdir()
    (reg / "models.yaml").write_text(
        "models:\n  - alias: m\n    provider: up\n    model_id: model-a\n    data_classes: [public, internal]\n"
        "    owner: ml-team\n")
    app, log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u")
    with TestClient(app) as client:
        ok = _post(client, secret, headers={"x-soc2ai-classification": "internal"})
        refused = _post(client, secret, headers={"x-soc2ai-classification": "restricted"})
        bad = _post(client, secret, headers={"x-soc2ai-classification": "secret-ish"})
    assert ok[0] == 200
    assert refused[0] == 403 and refused[1]["error"]["code"] == "classification_not_allowed"  # type: ignore[index]
    assert bad[0] == 400
    recs = inference_records(log)
    assert [r["status"] for r in recs] == [200, 403, 400]
    assert recs[0]["classification"] == "internal"
    assert any(r["action"] == "classification" for r in records_of(log, "access"))


def test_key_classification_is_a_floor(env: Harness) -> None:
    """A key created for confidential data cannot declare its requests public to reach a public-only model."""
    reg = env.tmp / "registers"
    reg.mkdir()
    (reg / "models.yaml").write_text(
        "models:\n  - alias: m\n    provider: up\n    model_id: model-a\n    data_classes: [public]\n"
        "    owner: ml-team\n")
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role="inference", user_id="u", classification="confidential")
    public, _ = keys.create(role="inference", user_id="v")
    with TestClient(app) as client:
        lowered = _post(client, secret, headers={"x-soc2ai-classification": "public"})
        fine = _post(client, public, headers={"x-soc2ai-classification": "public"})
    assert lowered[0] == 403 and fine[0] == 200


@pytest.mark.parametrize("role,path,status", [("admin", "/admin/stats", 200), ("auditor", "/admin/stats", 200),
                                              ("inference", "/admin/stats", 403),
                                              ("auditor", "/v1/models", 403)])
def test_admin_and_auditor_roles(env: Harness, role: str, path: str, status: int) -> None:
    """Least privilege: stats for admin and auditor, inference keys cannot read them, auditors cannot infer."""
    app, _log, keys = env.app(env.config())
    secret, _ = keys.create(role=role, user_id="u")
    with TestClient(app) as client:
        r = client.get(path, headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == status
    if status == 200:
        assert "ledger" in r.json() and "content" not in r.text


def test_auditor_reads_checkpoint_and_proofs(env: Harness) -> None:
    """An auditor key gets the signed checkpoint and a verifiable inclusion proof; inference keys do not."""
    from soc2ai.ledger.keys import load_verifiers
    from soc2ai.ledger.proofs import verify_inclusion_bundle

    cfg = env.config()
    app, log, keys = env.app(cfg)
    infer, _ = keys.create(role="inference", user_id="u")
    auditor, _ = keys.create(role="auditor", user_id="a")
    with TestClient(app) as client:
        assert _post(client, infer)[0] == 200
        log.flush()
        idx = next(e.idx for e in log.entries(kind="inference"))
        h = {"authorization": f"Bearer {auditor}"}
        cp = client.get("/admin/checkpoint", headers=h)
        pr = client.get(f"/admin/proof/{idx}", headers=h)
        missing = client.get("/admin/proof/999999", headers=h)
        denied = client.get(f"/admin/proof/{idx}", headers={"authorization": f"Bearer {infer}"})
    assert cp.status_code == 200 and cp.json()["size"] >= idx + 1 and cp.json()["note"]
    assert pr.status_code == 200
    verify_inclusion_bundle(pr.json(), load_verifiers(cfg.path(cfg.ledger.keys_dir)))
    assert missing.status_code == 404 and denied.status_code == 403
    reads = [r for r in records_of(log, "access") if r["action"] in ("admin.checkpoint", "admin.proof")]
    assert len(reads) == 3 and all(r["role"] == "auditor" for r in reads)
