"""The model registry: every production model/config with its ticket, evaluation and approval (CC8.1).

``registers/models.yaml``::

    models:
      - alias: support-chat
        provider: openai
        model_id: gpt-4o-mini-2024-07-18
        parameters: {temperature: 0.2}
        system_prompt: support_reply@v2
        data_classes: [public, internal, confidential]
        owner: ml-team@example.com
        ticket: ENG-101
        eval: {file: evals/support-chat.json, sha256: "..."}
        approval: {by: cto@example.com, date: 2026-01-10}
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator

from soc2ai.errors import ConfigError
from soc2ai.governance._yaml import PastDay, RegisterModel, read_yaml, register_remedy, unique, validate
from soc2ai.governance.checks import FAIL, OK, WARN, CheckResult
from soc2ai.governance.gitlog import Person

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
Classification = Literal["public", "internal", "confidential", "restricted"]
_HEX = r"^(sha256:)?[0-9a-fA-F]{64}$"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hex(value: str) -> str:
    return value.lower().removeprefix("sha256:")


class HashedFile(RegisterModel):
    """A file reference with its content hash."""

    file: str = Field(min_length=1)
    sha256: str = Field(pattern=_HEX)


class Dataset(HashedFile):
    """A training dataset file and the ledger id of its passing scan receipt."""

    scan_record: str | None = None


class Approval(RegisterModel):
    """Who approved, when, and where (ticket/PR link)."""

    by: str = Field(min_length=1)
    date: PastDay
    reference: str | None = None


class FineTune(RegisterModel):
    """How a fine-tuned model was produced."""

    base_model: str = Field(min_length=1)
    datasets: list[Dataset] = Field(min_length=1)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    job_id: str | None = None
    launched_by: str = Field(min_length=1)
    approved_by: str | None = None


class ModelEntry(RegisterModel):
    """One model alias served in some environment."""

    alias: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    provider: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    environment: Literal["production", "staging", "development"] = "production"
    parameters: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None
    data_classes: list[Classification] = Field(min_length=1)
    owner: str = Field(min_length=1)
    ticket: str | None = None
    eval: HashedFile | None = None
    approval: Approval | None = None
    fine_tune: FineTune | None = None
    description: str = ""


class ModelsFile(RegisterModel):
    """The whole ``models.yaml``."""

    models: list[ModelEntry]

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[ModelEntry]) -> list[ModelEntry]:
        unique(value, "alias", "alias")
        return value


class ModelRegistry:
    """Loaded ``models.yaml``; the gateway asks it which data classes a model may receive."""

    def __init__(self, path: Path, entries: list[ModelEntry]) -> None:
        self.path = path
        self._entries = {e.alias: e for e in entries}

    @classmethod
    def load(cls, path: Path, *, today: Any = None, as_of: bool = False) -> ModelRegistry:
        """Read and validate; a missing file, an empty file or a bad entry raises ConfigError."""
        if not path.is_file():
            raise ConfigError("model register not found (run `soc2ai init`)", file=str(path))
        data, node = read_yaml(path)
        if data is None:
            raise ConfigError("model register is empty", file=str(path), line=1, field="models")
        parsed = validate(ModelsFile, data, node, str(path), today=today, as_of=as_of)
        return cls(path, parsed.models)

    def list(self) -> list[ModelEntry]:
        """Entries in file order."""
        return list(self._entries.values())

    def get(self, alias: str) -> ModelEntry | None:
        """The entry for ``alias`` or None."""
        return self._entries.get(alias)

    def allows(self, alias: str, classification: str) -> bool:
        """Whether data of ``classification`` may be sent to ``alias`` (unknown alias/class: no)."""
        entry = self._entries.get(alias)
        return entry is not None and classification in entry.data_classes


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value.strip().rstrip("%"))
        except ValueError:
            return False
        return True
    return False


def _has_measurement(value: Any) -> bool:
    """Some numeric value somewhere: labels, names and empty objects are not results."""
    if isinstance(value, dict):
        return any(_has_measurement(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_measurement(v) for v in value)
    return _is_number(value)


def _eval_has_metrics(path: Path) -> bool:
    raw = path.read_bytes()
    if path.suffix.lower() == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error):
            return False
        # CSV cells are text: a row holds a metric when one of its cells is a number.
        return any(_is_number(cell) for row in rows for cell in row.values() if isinstance(cell, str))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if isinstance(data, dict) and "metrics" in data:
        data = data["metrics"]
    return isinstance(data, dict | list) and _has_measurement(data)


def _entry_checks(
    entry: ModelEntry,
    base: Path,
    scan_records: Mapping[str, Mapping[str, Any]] | None,
    prompt_refs: set[str] | None,
) -> list[CheckResult]:
    out: list[CheckResult] = []
    who = f"model {entry.alias!r}"

    def fail(check: str, msg: str, remedy: str) -> None:
        out.append(CheckResult(f"models.{check}", "CC8.1", FAIL, f"{who}: {msg}", remedy))

    if entry.environment == "production":
        if not entry.ticket:
            fail("ticket", "no change ticket", "add `ticket:` with the change request id")
        if entry.approval is None:
            fail("approval", "no approval", "add `approval: {by:, date:}`")
        if entry.eval is None:
            fail("eval", "no evaluation results", "add `eval: {file:, sha256:}` pointing at the eval results")
        else:
            path = base / entry.eval.file
            if not path.is_file():
                fail("eval", f"evaluation file {entry.eval.file} not found", "commit the eval results file")
            elif file_sha256(path) != _hex(entry.eval.sha256):
                fail(
                    "eval_hash",
                    f"evaluation file {entry.eval.file} changed since it was recorded (hash mismatch)",
                    "re-run the evaluation, review it, and record the new sha256",
                )
            elif not _eval_has_metrics(path):
                fail(
                    "eval", f"evaluation file {entry.eval.file} holds no metrics", "record metrics (JSON/CSV)"
                )
    if entry.system_prompt and prompt_refs is not None and entry.system_prompt not in prompt_refs:
        fail(
            "prompt",
            f"system prompt {entry.system_prompt} is not in the prompt registry",
            "reference an existing template as name@vN",
        )
    ft = entry.fine_tune
    if ft is not None:
        if not ft.approved_by:
            fail("finetune_approval", "fine-tune job has no approver", "add `fine_tune.approved_by`")
        elif Person.parse(ft.approved_by).same_as(Person.parse(ft.launched_by)):
            # Same matching as change review: "Alice <alice@x>" and "alice@x" are one person.
            fail(
                "finetune_approval",
                "fine-tune approved by the person who launched it",
                "have someone else approve the job",
            )
        for ds in ft.datasets:
            path = base / ds.file
            if path.is_file() and file_sha256(path) != _hex(ds.sha256):
                fail(
                    "dataset_hash",
                    f"dataset {ds.file} changed since training (hash mismatch)",
                    "record the dataset actually used, or retrain",
                )
            if not ds.scan_record:
                fail(
                    "dataset_scan",
                    f"dataset {ds.file} has no scan receipt",
                    "run `soc2ai scan` on it and record the receipt id as `scan_record`",
                )
            elif scan_records is None:
                out.append(
                    CheckResult(
                        "models.dataset_scan",
                        "CC8.1",
                        WARN,
                        f"{who}: scan receipt {ds.scan_record} not verified (no ledger)",
                        "run the check where the ledger is reachable",
                    )
                )
            else:
                rec = scan_records.get(ds.scan_record)
                if rec is None:
                    fail(
                        "dataset_scan", f"scan receipt {ds.scan_record} not in the ledger", "re-run the scan"
                    )
                elif rec.get("passed") is not True:
                    fail("dataset_scan", f"scan receipt {ds.scan_record} did not pass", "clean the dataset")
                elif _hex(str(rec.get("dataset_hash", ""))) != _hex(ds.sha256):
                    fail(
                        "dataset_scan",
                        f"scan receipt {ds.scan_record} is for different data",
                        "scan the dataset that was used for training",
                    )
    return out


def check_models(
    config: Any,
    *,
    gateway_models: Iterable[str] | None = None,
    scan_records: Mapping[str, Mapping[str, Any]] | None = None,
    today: Any = None,
    as_of: bool = False,
) -> list[CheckResult]:
    """The ``models check`` lines. ``gateway_models`` defaults to the aliases in ``[gateway]``; ``as_of``:
    ``today`` is a day the check is run as of (``--today``), not the current date."""
    from soc2ai.governance._paths import gateway_names, paths
    from soc2ai.governance.prompts import PromptRegistry

    p = paths(config)
    try:
        registry = ModelRegistry.load(p.models, today=today, as_of=as_of)
    except ConfigError as exc:
        return [
            CheckResult("models.register", "CC8.1", FAIL, str(exc), register_remedy(exc))
        ]
    if not registry.list():
        return [
            CheckResult(
                "models.register",
                "CC8.1",
                FAIL,
                f"{p.models}: no models registered",
                "register every model the product uses",
            )
        ]
    prompt_refs: set[str] | None
    results: list[CheckResult] = []
    try:
        prompt_refs = {t.ref for t in PromptRegistry.load(p.prompts).list()}
    except ConfigError as exc:
        prompt_refs = None
        # A reference that cannot be checked is not a pass: `models check` alone would otherwise
        # exit 0 with a broken or missing prompt registry behind every system_prompt.
        results.extend(
            CheckResult(
                "models.prompt",
                "CC8.1",
                FAIL,
                f"model {e.alias!r}: system prompt {e.system_prompt} cannot be verified: {exc}",
                "fix the prompt registry (see `soc2ai prompts list`)",
            )
            for e in registry.list()
            if e.system_prompt
        )
    for entry in registry.list():
        results.extend(_entry_checks(entry, config.root, scan_records, prompt_refs))
    aliases = list(gateway_models) if gateway_models is not None else gateway_names(config, "models")
    results.extend(
        CheckResult(
            "models.unregistered",
            "CC8.1",
            FAIL,
            f"gateway model alias {alias!r} is not in {p.models.name}",
            "register it with ticket, eval results and approval",
        )
        for alias in aliases
        if registry.get(alias) is None
    )
    if not any(r.status == FAIL for r in results):
        n = sum(e.environment == "production" for e in registry.list())
        results.insert(
            0,
            CheckResult(
                "models.register",
                "CC8.1",
                OK,
                f"{len(registry.list())} models registered ({n} production), "
                "each with ticket, evaluation and approval",
            ),
        )
    return results
