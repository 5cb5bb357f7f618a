"""Example prompts and registers for ``soc2ai init``: every governance check passes on them.

Existing files are never overwritten. Dates are relative to ``today`` so the examples start fresh.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

_PROMPT = """\
---
owner: support-team@example.com
status: current
description: Answer a customer's support question politely, using only the provided context.
variables: [customer_name, question, context]
---
You are a support assistant for Example Inc. Answer {{ customer_name }}'s question using only the
context below. If the context does not contain the answer, say so and offer to open a ticket.

Context:
{{ context }}

Question: {{ question }}
"""

_EVAL = """\
{
  "model": "support-chat",
  "dataset": "evals/support-questions-v1",
  "metrics": {"answer_accuracy": 0.91, "groundedness": 0.95, "refusal_rate": 0.03, "pii_leak_rate": 0.0}
}
"""

_INCIDENTS_README = """\
# Incident register

One YAML file per incident (`INC-0001.yaml`, ...), created with `soc2ai incidents new` or automatically
by `soc2ai alerts` from HIGH alerts. Record every action with `soc2ai incidents update` and close with
a root cause and remediation (`soc2ai incidents close`). See docs/governance.md.
"""


def _models(today: date, eval_sha: str) -> str:
    return f"""\
# Production models (CC8.1). Every alias the gateway serves must be listed here.
models:
  - alias: support-chat
    provider: openai
    model_id: gpt-4o-mini-2024-07-18
    environment: production
    parameters: {{temperature: 0.2, max_tokens: 800}}
    system_prompt: support_reply@v1
    data_classes: [public, internal, confidential]   # never `restricted`
    owner: ml-team@example.com
    ticket: ENG-1
    eval: {{file: evals/support-chat.json, sha256: {eval_sha}}}
    approval: {{by: cto@example.com, date: {today.isoformat()}, reference: ENG-1}}
"""


def _vendors(today: date) -> str:
    def d(days: int) -> str:
        return (today + timedelta(days=days)).isoformat()

    entries = []
    for name, aliases, period_days in (
        ("OpenAI", "[openai, azure-openai]", 60),
        ("Anthropic", "[anthropic]", 75),
    ):
        entries.append(f"""\
  - name: {name}
    aliases: {aliases}
    services: [chat completions]
    data_categories: [customer support messages]
    subprocessor: true
    privacy_policy_listed: true
    soc2: {{type: II, report_date: {d(-30)}, period_end: {d(-period_days)}, reference: vendor-docs/{name.lower()}-soc2.pdf}}
    dpa: {{signed: {d(-200)}, reference: legal/{name.lower()}-dpa.pdf}}
    data_use: API inputs and outputs are not used to train models
    no_training: true
    review: {{last: {d(-30)}, next: {d(335)}, by: security@example.com}}
    incident_notification_sla_hours: 72
    owner: security@example.com
""")
    return "# AI vendors and subprocessors (CC9.2). Review each at least yearly.\nvendors:\n" + "".join(
        entries
    )


_SOURCES = """\
# Sources of training and retrieval (RAG) data (C1.1).
sources:
  - id: help-center
    name: Public help-center articles
    origin: internal
    owner: support-team@example.com
    classification: public
    pii_expected: false
    used_for: [rag]
    retention_days: 730
"""


def write_examples(root: Path, *, today: date) -> list[Path]:
    """Write example prompts/, registers/ and evals/ under ``root``; return the files written."""
    eval_bytes = _EVAL.encode("utf-8")
    files: dict[Path, str] = {
        root / "prompts" / "support_reply" / "v1.txt": _PROMPT,
        root / "evals" / "support-chat.json": _EVAL,
        root / "registers" / "models.yaml": _models(today, hashlib.sha256(eval_bytes).hexdigest()),
        root / "registers" / "vendors.yaml": _vendors(today),
        root / "registers" / "data_sources.yaml": _SOURCES,
        root / "registers" / "incidents" / "README.md": _INCIDENTS_README,
    }
    written: list[Path] = []
    for path, text in files.items():
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written
