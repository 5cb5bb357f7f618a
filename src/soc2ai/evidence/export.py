"""``soc2ai evidence export``: the auditor's bundle for a period, checkable with only the public key.

The ledger part is a whole segment of the log, not a sample: the signed checkpoints that bracket the
period (the last one sealed before it, the first one sealed after it, or the latest), the frontier of the first (the roots of the perfect subtrees that make up the log before the
period), and every record in between as its exact canonical bytes (or its leaf hash, when retention
pruned the body). From these alone an auditor recomputes both signed roots (RFC 9162 tree hashing), which
proves the segment is complete (no record left out, none added, none altered) and that the later
checkpoint extends the earlier one; ``auditor/verify_proof.py --evidence DIR`` does exactly that, and
checks the populations against the records. The rest is the evidence computed from git and the
registers (change population, readiness results) as the commands print it.

Layout::

    manifest.json                what, when, which checkpoints, counts, notes on parts not produced
    SHA256SUMS                   every other file (``sha256sum -c SHA256SUMS``)
    ledger/checkpoint-start.txt  signed checkpoint at the period's start (absent when the log began in it)
    ledger/checkpoint-end.txt    signed checkpoint at the period's end
    ledger/frontier.json         base64 subtree roots of the log before the period (RFC 9162 order)
    ledger/records.jsonl         every record of the segment, one canonical JSON body per line
    ledger/pruned.csv            idx,leaf_hash (hex),kind,id,ts of records whose body retention removed
    ledger/keys/*.pub            the verifier keys (current and retired)
    populations/<kind>.csv       the period's records by kind, one row each, to sample from
    changes.json                 the change population (CC8.1) and its reconciliation with git, if a repo
    incidents.json               incidents open at any time in the period (CC7.4, CC7.5)
    vendors.json                 the vendor review table at export time (CC9.2)
    readiness.json               `soc2ai check` results at export time
    controls.csv                 criterion, control, and the files of this bundle that evidence it
    report.html                  a readable summary of the above (the files are the evidence, not the page)
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from soc2ai import __version__
from soc2ai.errors import UsageError, VerificationError
from soc2ai.ledger.keys import SIGNING_PUB, TRUSTED_DIR
from soc2ai.ledger.merkle import leaf_hash
from soc2ai.ledger.note import open_checkpoint
from soc2ai.ledger.records import INFERENCE_FIELDS, KINDS, Record
from soc2ai.ledger.tree import StoredTree

if TYPE_CHECKING:
    from soc2ai.config import Config
    from soc2ai.ledger import AuditLog

BUNDLE_TYPE = "soc2ai.evidence/v1"
_COMMON = ("idx", "id", "ts_utc", "subject_ref", "pruned")


@dataclass
class EvidenceBundle:
    """What :func:`export_evidence` wrote (``manifest`` is also ``manifest.json``)."""

    out: Path
    manifest: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


def _day_bounds(since: date, until: date) -> tuple[int, int]:
    """Microsecond bounds [lo, hi] of whole UTC days ``since`` .. ``until`` (inclusive)."""
    if until < since:
        raise UsageError(f"--until ({until}) is before --since ({since})")
    lo = datetime.combine(since, time.min, UTC)
    hi = datetime.combine(until + timedelta(days=1), time.min, UTC)
    return int(lo.timestamp() * 1_000_000), int(hi.timestamp() * 1_000_000) - 1


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def frontier(tree: StoredTree, size: int) -> list[bytes]:
    """Roots of the perfect subtrees that make up the first ``size`` leaves, largest (leftmost) first."""
    out: list[bytes] = []
    lo = 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            out.append(tree.mth(lo, lo + (1 << bit)))
            lo += 1 << bit
    return out


def _kind_columns() -> dict[str, tuple[str, ...]]:
    """Population CSV columns per record kind: the common ones, then the kind's schema fields."""
    cols: dict[str, tuple[str, ...]] = {"inference": _COMMON + INFERENCE_FIELDS}
    stack: list[type[Record]] = [Record]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.kind:
            own = [f.name for f in dataclasses.fields(cls) if f.name not in ("id", "ts", "user_id", "attrs")]
            cols[cls.kind] = (*_COMMON, *own, "attrs")
    return cols


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class _Populations:
    """One CSV per record kind, written as rows arrive (the segment is streamed, never held in memory)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.columns = _kind_columns()
        self.files: dict[str, Any] = {}
        self.writers: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, idx: int, body: dict[str, Any], *, pruned: bool = False) -> None:
        kind = str(body.get("kind"))
        cols = self.columns.get(kind)
        if cols is None:  # a kind this version does not know: its fields as they are
            cols = self.columns[kind] = (*_COMMON, *sorted(k for k in body if k not in ("v", "kind", "id", "ts")))
        if kind not in self.writers:
            fh = (self.dir / f"{kind}.csv").open("w", newline="", encoding="utf-8")
            self.files[kind] = fh
            self.writers[kind] = csv.writer(fh, lineterminator="\n")
            self.writers[kind].writerow(cols)
        row = {**body, "idx": idx, "ts_utc": _iso(int(body["ts"])), "pruned": pruned}
        self.writers[kind].writerow([_cell(row.get(c)) for c in cols])
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _ledger_segment(log: AuditLog, lo: int, hi: int, out: Path,
                    progress: Callable[[int, int], None] | None) -> tuple[dict[str, Any], dict[str, int]]:
    store = log.store
    last_in = store.checkpoint_before(hi + 1)
    if last_in is None:
        raise UsageError(f"the ledger has no signed checkpoint for a record on or before {_iso(hi)[:10]}: "
                         "nothing to export for this period")
    # The segment ends at the first checkpoint sealed after the period (a batch straddling its end holds
    # records of the period too), else the latest; never before the last one sealed within the period
    # (records replayed from the spool can be sealed out of time order). It starts at the last checkpoint
    # sealed before the period.
    after = store.checkpoint_after(hi)
    if after is None:
        head = store.head()
        after = (head.size, head.checkpoint_note) if head.checkpoint_note is not None else None
    end = max((c for c in (last_in, after) if c is not None), key=lambda c: c[0])
    start = store.checkpoint_before(lo)
    end_cp = open_checkpoint(end[1], log.verifiers)
    start_cp = open_checkpoint(start[1], log.verifiers) if start else None
    a, b = (start_cp.size if start_cp else 0), end_cp.size
    if a > b:  # only possible when records were sealed out of time order (spool replay) around the bounds
        a, start_cp = 0, None
    ledger = out / "ledger"
    (ledger / "keys").mkdir(parents=True)
    keys_dir = log.keys_dir
    for pub in [keys_dir / SIGNING_PUB, *sorted((keys_dir / TRUSTED_DIR).glob("*.pub"))]:
        if pub.is_file():
            shutil.copyfile(pub, ledger / "keys" / pub.name)
    if start_cp is not None:
        (ledger / "checkpoint-start.txt").write_text(start_cp.note, encoding="utf-8")
    (ledger / "checkpoint-end.txt").write_text(end_cp.note, encoding="utf-8")
    (ledger / "frontier.json").write_bytes(orjson.dumps(
        [base64.b64encode(h).decode() for h in frontier(StoredTree(store), a)]))
    pops = _Populations(out / "populations")
    (out / "populations").mkdir()
    pruned = 0
    altered: list[int] = []
    with (ledger / "records.jsonl").open("wb") as rec, (ledger / "pruned.csv").open("w", encoding="utf-8") as pr:
        pr.write("idx,leaf_hash,kind,id,ts\n")
        for row in store.iter_leaves(a, b):
            if row.body is None:
                # Kind, id and time of a pruned record come from the store's columns: its hash alone is
                # what the checkpoints vouch for, but the population must still list it.
                pr.write(f"{row.idx},{row.leaf_hash.hex()},{row.kind},{row.rid},{row.ts}\n")
                pruned += 1
                if lo <= row.ts <= hi:
                    pops.add(row.idx, {"kind": row.kind, "id": row.rid, "ts": row.ts, "subject_ref":
                                       None if row.subject_ref is None else row.subject_ref.hex()}, pruned=True)
            else:
                if leaf_hash(row.body) != row.leaf_hash:  # exported as stored; the auditor's check will fail
                    altered.append(row.idx)
                rec.write(row.body + b"\n")
                if lo <= row.ts <= hi:  # the segment's edges may hold a few records from just outside
                    pops.add(row.idx, orjson.loads(row.body))
            if progress is not None and (row.idx - a) % 1000 == 0:
                progress(row.idx - a, b - a)
    pops.close()
    if progress is not None:
        progress(b - a, b - a)
    info = {"origin": end_cp.origin, "start_size": a, "end_size": b, "records": b - a, "pruned": pruned,
            "start_checkpoint": "ledger/checkpoint-start.txt" if start_cp else None,
            "end_checkpoint": "ledger/checkpoint-end.txt",
            "period_start_utc": _iso(lo), "period_end_utc": _iso(hi), "altered_records": altered[:100]}
    return info, pops.counts


def _changes(config: Config, since: date, until: date, out: Path) -> str | None:
    """changes.json, or why it could not be produced."""
    from soc2ai.errors import Soc2AIError
    from soc2ai.governance import gitlog
    from soc2ai.governance._paths import paths
    from soc2ai.governance.changes import changes_population, reconcile

    try:
        root = gitlog.repo_root(config.root)
        population = changes_population(root, since, until, config.governance, pr_export=paths(config).pr_export)
        rec = reconcile(root, population, since, until, config.governance)
    except (Soc2AIError, OSError) as exc:
        return f"change population not produced: {exc}"
    (out / "changes.json").write_bytes(orjson.dumps(
        {"since": since, "until": until, "reconciliation": rec.to_dict(), "changes": [c.to_dict() for c in population]},
        default=str, option=orjson.OPT_INDENT_2))
    return None


def _registers(config: Config, lo: int, hi: int, out: Path) -> list[str]:
    """incidents.json and vendors.json; why either could not be produced."""
    from soc2ai.errors import Soc2AIError
    from soc2ai.governance._paths import paths
    from soc2ai.governance.incidents import IncidentRegister
    from soc2ai.governance.vendors import load_vendors, render_report, vendor_rows

    notes: list[str] = []
    where = paths(config)
    start, end = datetime.fromtimestamp(lo / 1e6, UTC), datetime.fromtimestamp(hi / 1e6, UTC)
    try:
        incidents = [i for i in IncidentRegister(where.incidents).list()
                     if i.detected_at <= end and (i.closed_at is None or i.closed_at >= start)]
        (out / "incidents.json").write_bytes(orjson.dumps([i.model_dump(mode="json") for i in incidents],
                                                          option=orjson.OPT_INDENT_2))
    except Soc2AIError as exc:
        notes.append(f"incidents not exported: {exc}")
    try:
        today = date.today()  # the register as it stands: later review dates are not "in the future"
        rows = vendor_rows(load_vendors(where.vendors, today=today), today=today,
                           max_age=config.governance.soc2_max_age_days)
        (out / "vendors.json").write_text(render_report(rows, "json", today=today), encoding="utf-8")
    except Soc2AIError as exc:
        notes.append(f"vendor report not exported: {exc}")
    return notes


# Criterion, control, and the bundle files that evidence it (a row is written when one of them exists).
_MATRIX: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CC4.1", "readiness checks, run and recorded at export", ("readiness.json", "populations/readiness.csv")),
    ("CC6.1-CC6.3", "API keys and roles; every decision recorded", ("populations/access.csv",)),
    ("CC6.7, C1.1", "dataset gate before training or RAG, with receipts", ("populations/scan.csv",)),
    ("CC7.2", "every model call recorded (keyed hashes), screened; alert rules",
     ("populations/inference.csv", "populations/alert.csv")),
    ("CC7.3-CC7.5", "alerts triaged into incidents with root cause and remediation",
     ("populations/alert.csv", "incidents.json")),
    ("CC8.1", "changes to prompts, models, registers and keys reviewed and recorded",
     ("changes.json", "populations/config_change.csv")),
    ("CC9.2", "LLM providers kept as subprocessors: SOC 2 report, DPA, reviews", ("vendors.json",)),
    ("PI1.2-PI1.5", "complete, unaltered inference records under signed checkpoints",
     ("ledger/records.jsonl", "ledger/checkpoint-end.txt")),
    ("P4.2, P4.3", "retention and data-subject requests, with receipts",
     ("populations/retention.csv", "populations/dsar.csv")),
)


def _controls(out: Path) -> None:
    with (out / "controls.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["criterion", "control", "evidence"])
        for criterion, control, files in _MATRIX:
            present = [f for f in files if (out / f).exists()]
            if present:
                w.writerow([criterion, control, "; ".join(present)])


def _report(out: Path, manifest: dict[str, Any]) -> None:
    """report.html from the files already written (autoescaped: register text is user input)."""
    from importlib import resources

    import jinja2

    def load(name: str) -> Any:
        path = out / name
        return orjson.loads(path.read_bytes()) if path.exists() else None

    with (out / "controls.csv").open(encoding="utf-8", newline="") as fh:
        controls = [{**row, "evidence": row["evidence"].split("; ")} for row in csv.DictReader(fh)]
    template = resources.files("soc2ai.evidence").joinpath("report.html.j2").read_text(encoding="utf-8")
    html = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(template).render(
        m=manifest, controls=controls, readiness=load("readiness.json"), changes=load("changes.json"),
        incidents=load("incidents.json"), vendors=load("vendors.json"))
    (out / "report.html").write_text(html, encoding="utf-8")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(out: Path) -> Iterator[Path]:
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name not in ("SHA256SUMS", "manifest.json"):
            yield p


def export_evidence(config: Config, since: date, until: date, out: Path, *,
                    progress: Callable[[int, int], None] | None = None,
                    readiness: bool = True) -> EvidenceBundle:
    """Write the evidence bundle for UTC days ``since`` .. ``until`` into the new directory ``out``."""
    from soc2ai.ledger import AuditLog

    lo, hi = _day_bounds(since, until)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty: give a new directory")
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    report: Any = None
    if readiness:  # first, so its own ledger record is part of a period that ends today
        from soc2ai.readiness.runner import run

        report = run(config)
        (out / "readiness.json").write_bytes(orjson.dumps(report.to_dict(), default=str,
                                                          option=orjson.OPT_INDENT_2))
    with AuditLog.open(config, read_only=True) as log:
        try:
            ledger_info, counts = _ledger_segment(log, lo, hi, out, progress)
        except VerificationError as exc:
            raise VerificationError(f"the ledger's own checkpoints do not verify: {exc}") from exc
    if ledger_info["altered_records"]:
        notes.append(f"records whose body does not match its leaf hash (the bundle will not verify; run "
                     f"`soc2ai log verify`): {ledger_info['altered_records']}")
    if (why := _changes(config, since, until, out)) is not None:
        notes.append(why)
    notes += _registers(config, lo, hi, out)
    _controls(out)
    manifest: dict[str, Any] = {
        "type": BUNDLE_TYPE, "soc2ai": __version__, "project": config.project.name,
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "generated_utc": datetime.now(UTC).isoformat(), "ledger": ledger_info,
        "populations": {k: {"file": f"populations/{k}.csv", "rows": counts[k]}
                        for k in sorted(counts, key=lambda k: (KINDS.index(k) if k in KINDS else 99, k))},
        "readiness": None if report is None else {
            "file": "readiness.json", **{s: report.count(s) for s in ("OK", "WARN", "FAIL")}},
        "changes": "changes.json" if (out / "changes.json").exists() else None,
        "incidents": "incidents.json" if (out / "incidents.json").exists() else None,
        "vendors": "vendors.json" if (out / "vendors.json").exists() else None,
        "controls": "controls.csv", "report": "report.html",
        "notes": notes,
        "verify": "python auditor/verify_proof.py --evidence DIR --pubkey signing.pub (the key you were given "
                  "out of band, not the copy in ledger/keys); then `sha256sum -c SHA256SUMS` inside DIR",
    }
    _report(out, manifest)
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    sums = [f"{_sha256(p)}  {p.relative_to(out).as_posix()}" for p in _files(out)]
    sums.append(f"{_sha256(out / 'manifest.json')}  manifest.json")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return EvidenceBundle(out, manifest, counts)
