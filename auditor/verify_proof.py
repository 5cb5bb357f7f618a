#!/usr/bin/env python3
"""Check a soc2ai proof bundle with nothing but the public key: the auditor's own verifier.

One file, written from the public specifications and sharing no code with soc2ai, so a passing check does
not rest on trusting the tool under audit. Read it before you run it; it needs Python 3.11+ and the
``cryptography`` package (for Ed25519), nothing else.

- Checkpoints are C2SP signed notes (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint) signed
  with Ed25519: the note text, a blank line, and lines ``— <key name> <base64(4-byte key id || signature)>``.
  A verifier key is ``<name>+<hex key id>+<base64(0x01 || 32-byte public key)>``; the key id is the first
  4 bytes of SHA-256(name || "\\n" || 0x01 || public key).
- The log is an RFC 9162 Merkle tree: leaf hash SHA-256(0x00 || record bytes), node hash
  SHA-256(0x01 || left || right). Inclusion proofs are checked as in RFC 9162 section 2.1.3.2, consistency
  proofs as in section 2.1.4.2.
- An inclusion bundle is JSON ``{"type": "soc2ai.inclusion/v1", "index", "leaf" (base64 record, or null when
  its body was pruned), "leaf_hash", "path" (base64 hashes), "checkpoint" (signed note)}``; a consistency
  bundle ``{"type": "soc2ai.consistency/v1", "old_checkpoint", "checkpoint", "path", ...}``.

- An evidence bundle (``soc2ai evidence export``) is a directory: two signed checkpoints bracketing the
  period, the ``frontier`` of the earlier one (the roots of the perfect subtrees that make up the log before
  the period, largest first), every record in between (``records.jsonl``: exact canonical bytes, one per
  line; ``pruned.csv``: idx and leaf hash of records whose body retention removed, with their kind, id and
  time as the store keeps them, which no signature covers), population CSVs per record kind, and SHA256SUMS.
  Recomputing both signed roots from these proves the segment complete and unaltered; each population row
  must then be a record of the segment, and each record of the period a row.

    python verify_proof.py proof.json --pubkey signing.pub [--pubkey old.pub ...]
    python verify_proof.py --evidence DIR --pubkey signing.pub

Exit status 0 and an OK line (with the record's fields, which are hashes and metadata, never content) when
the bundle verifies; 1 and the reason when it does not; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failed(Exception):
    """The bundle does not verify."""


def _b64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError as exc:
        raise Failed(f"{what} is not base64") from exc


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# -- keys and checkpoints (C2SP signed-note, tlog-checkpoint) ---------------------------------------------
def parse_key(line: str) -> tuple[str, bytes, bytes]:
    """``name+hexid+base64(0x01||key)`` -> (name, key id, public key); the id must match the key."""
    try:
        name, hexid, blob = line.strip().split("+", 2)
        raw = base64.b64decode(blob, validate=True)
    except ValueError as exc:
        raise Failed(f"not a verifier key: {line.strip()[:40]!r}") from exc
    if len(raw) != 33 or raw[0] != 0x01:
        raise Failed(f"verifier key {name!r} is not an Ed25519 key")
    kid = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if kid.hex() != hexid.lower():
        raise Failed(f"verifier key {name!r}: key id {hexid} does not match the key")
    return name, kid, raw[1:]


def open_checkpoint(note: Any, keys: list[tuple[str, bytes, bytes]]) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint carrying a valid signature by one of ``keys``."""
    if not isinstance(note, str):
        raise Failed("checkpoint is not text")
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise Failed("checkpoint has no signature block")
    signed = (body + "\n").encode()
    lines = body.split("\n")
    if len(lines) < 3 or not lines[0] or not lines[1].isdigit() or str(int(lines[1])) != lines[1]:
        raise Failed("checkpoint body is not origin / size / root")
    root = _b64(lines[2], "checkpoint root")
    if len(root) != 32:
        raise Failed("checkpoint root is not a SHA-256 hash")
    verified = 0
    for line in sigs.splitlines():
        if not line.startswith("\u2014 ") or line.count(" ") != 2:
            raise Failed(f"malformed signature line: {line[:40]!r}")
        name, blob = line[2:].split(" ")
        sig = _b64(blob, "signature")
        for kname, kid, pub in keys:
            if kname == name and kid == sig[:4]:
                try:
                    Ed25519PublicKey.from_public_bytes(pub).verify(sig[4:], signed)
                except InvalidSignature as exc:
                    raise Failed(f"bad signature by key {name!r}") from exc
                verified += 1
    if not verified:
        raise Failed("checkpoint is not signed by any of the given keys")
    return lines[0], int(lines[1]), root


# -- RFC 9162 proofs ---------------------------------------------------------------------------------------
def verify_inclusion(index: int, size: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Failed(f"index {index} is outside the tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise Failed("inclusion path is too long")
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed("inclusion path is too short")
    if r != root:
        raise Failed("inclusion path does not lead to the signed root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> None:
    """RFC 9162 section 2.1.4.2 (with its trivial cases: equal sizes, and the empty first tree)."""
    if not 0 <= first <= second:
        raise Failed(f"old size {first} is larger than new size {second}")
    if first == second:
        if path or first_root != second_root:
            raise Failed("two checkpoints of the same size with different roots or a non-empty proof")
        return
    if first == 0:
        if path:
            raise Failed("a proof from the empty tree must be empty")
        return
    if not path:
        raise Failed("empty consistency proof")
    if first & (first - 1) == 0:  # an exact power of two: the old root is where the path starts
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("consistency path is too long")
        if fn % 2 == 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed("consistency path is too short")
    if fr != first_root or sr != second_root:
        raise Failed("consistency path does not lead to both signed roots")


# -- bundles -----------------------------------------------------------------------------------------------
def verify(bundle: dict[str, Any], keys: list[tuple[str, bytes, bytes]]) -> str:
    """Verify a bundle; return the OK line."""
    kind = bundle.get("type")
    try:
        path = [_b64(p, "path entry") for p in bundle["path"]]
        if kind == "soc2ai.consistency/v1":
            o_origin, o_size, o_root = open_checkpoint(bundle["old_checkpoint"], keys)
            n_origin, n_size, n_root = open_checkpoint(bundle["checkpoint"], keys)
            if o_origin != n_origin:
                raise Failed(f"the checkpoints are of different logs ({o_origin!r}, {n_origin!r})")
            verify_consistency(o_size, n_size, o_root, n_root, path)
            return f"OK consistency: {n_origin} at size {n_size} extends size {o_size}"
        if kind != "soc2ai.inclusion/v1":
            raise Failed(f"unknown bundle type {kind!r}")
        index = bundle["index"]
        if type(index) is not int:
            raise Failed("index is not an integer")
        leaf = None if bundle.get("leaf") is None else _b64(bundle["leaf"], "leaf")
        leaf_hash = (hashlib.sha256(b"\x00" + leaf).digest() if leaf is not None
                     else _b64(bundle["leaf_hash"], "leaf_hash"))
        origin, size, root = open_checkpoint(bundle["checkpoint"], keys)
    except KeyError as exc:
        raise Failed(f"bundle has no {exc.args[0]!r}") from exc
    except TypeError as exc:
        raise Failed(f"malformed bundle: {exc}") from exc
    verify_inclusion(index, size, leaf_hash, path, root)
    if leaf is None:
        return f"OK inclusion: index {index} of {origin} (size {size}); its body was pruned, only its hash remains"
    try:
        record = json.loads(leaf)
    except ValueError as exc:
        raise Failed("the proven record is not JSON") from exc
    if not isinstance(record, dict) or record.get("idx") != index:
        raise Failed("the record's own idx is not the proven index")
    ts = record.get("ts")
    when = datetime.fromtimestamp(ts / 1e6, UTC).isoformat() if isinstance(ts, int) else "?"
    fields = {k: record[k] for k in ("kind", "id", "model", "subject_ref", "input_hash", "output_hash")
              if record.get(k) is not None}
    return f"OK inclusion: index {index} of {origin} (size {size}), recorded {when}, {json.dumps(fields)}"


# -- evidence bundles --------------------------------------------------------------------------------------
def _root(stack: list[tuple[int, bytes]]) -> bytes:
    """RFC 9162 root of a log given as perfect subtrees (size, hash), largest first."""
    if not stack:
        return hashlib.sha256(b"").digest()
    r = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        r = _node(h, r)
    return r


def _append(stack: list[tuple[int, bytes]], leaf_hash: bytes) -> None:
    stack.append((1, leaf_hash))
    while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
        (n, right), (_, left) = stack.pop(), stack.pop()
        stack.append((2 * n, _node(left, right)))


def _check_sums(d: Path) -> None:
    listed: dict[str, str] = {}
    for line in (d / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    present = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    if present != set(listed):
        raise Failed(f"SHA256SUMS does not list exactly the bundle's files (extra: {sorted(present - set(listed))}, "
                     f"missing: {sorted(set(listed) - present)})")
    for name, digest in listed.items():
        if hashlib.sha256((d / name).read_bytes()).hexdigest() != digest:
            raise Failed(f"{name} does not match its SHA-256 in SHA256SUMS")


def verify_evidence(d: Path, keys: list[tuple[str, bytes, bytes]]) -> str:
    """Verify an evidence bundle directory; return the OK line."""
    _check_sums(d)
    manifest = json.loads((d / "manifest.json").read_bytes())
    if not isinstance(manifest, dict) or manifest.get("type") != "soc2ai.evidence/v1":
        raise Failed("manifest.json is not a soc2ai.evidence/v1 manifest")
    led = d / "ledger"
    origin, end, end_root = open_checkpoint((led / "checkpoint-end.txt").read_text(encoding="utf-8"), keys)
    start, start_root = 0, hashlib.sha256(b"").digest()
    if (led / "checkpoint-start.txt").exists():
        s_origin, start, start_root = open_checkpoint((led / "checkpoint-start.txt").read_text(encoding="utf-8"), keys)
        if s_origin != origin:
            raise Failed(f"the checkpoints are of different logs ({s_origin!r}, {origin!r})")
    frontier = [_b64(h, "frontier hash") for h in json.loads((led / "frontier.json").read_bytes())]
    sizes = [1 << b for b in reversed(range(start.bit_length())) if start >> b & 1]
    if len(frontier) != len(sizes):
        raise Failed(f"the frontier has {len(frontier)} hashes; a log of {start} records has {len(sizes)}")
    stack = list(zip(sizes, frontier, strict=True))
    if _root(stack) != start_root:
        raise Failed("the frontier does not lead to the start checkpoint's signed root")
    # Leaves of the segment, by index: canonical bodies, and leaf hashes of pruned records.
    leaves: dict[int, bytes] = {}
    records: dict[int, tuple[Any, Any, Any, bool]] = {}  # idx -> (id, kind, ts, pruned): all the rest needs
    with (led / "records.jsonl").open("rb") as fh:
        for n, line in enumerate(fh, 1):
            body = line.rstrip(b"\n")
            rec = json.loads(body)
            idx = rec.get("idx") if isinstance(rec, dict) else None
            if type(idx) is not int or idx in leaves:
                raise Failed(f"records.jsonl line {n}: missing or repeated idx")
            leaves[idx] = hashlib.sha256(b"\x00" + body).digest()
            records[idx] = (rec.get("id"), rec.get("kind"), rec.get("ts"), False)
    with (led / "pruned.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            idx = int(row["idx"])
            if idx in leaves:
                raise Failed(f"pruned.csv: idx {idx} is also in records.jsonl")
            leaves[idx] = bytes.fromhex(row["leaf_hash"])
            records[idx] = (row["id"], row["kind"], int(row["ts"]), True)
    if set(leaves) != set(range(start, end)):
        raise Failed(f"the segment does not hold exactly the records {start}..{end - 1} "
                     f"(missing {sorted(set(range(start, end)) - set(leaves))[:5]}, "
                     f"outside {sorted(set(leaves) - set(range(start, end)))[:5]})")
    for idx in range(start, end):
        _append(stack, leaves[idx])
    pruned = sum(1 for r in records.values() if r[3])
    if _root(stack) != end_root:
        raise Failed("the records do not lead to the end checkpoint's signed root")
    # Populations: every row a record of the segment (same id, kind and time), every record of the period a row.
    period = manifest.get("ledger", {})
    lo = datetime.fromisoformat(period["period_start_utc"])
    hi = datetime.fromisoformat(period["period_end_utc"])
    rows: set[int] = set()
    for path in sorted((d / "populations").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                idx = int(row["idx"])
                rec = records.get(idx)
                if (rec is None or rec[0] != row["id"] or rec[1] != path.stem or idx in rows
                        or rec[3] != (row.get("pruned") == "true")):
                    raise Failed(f"{path.name}: row for idx {idx} is not that record of the segment")
                if type(rec[2]) is not int or datetime.fromtimestamp(rec[2] / 1e6, UTC).isoformat() != row["ts_utc"]:
                    raise Failed(f"{path.name}: row for idx {idx} has another time than the record")
                rows.add(idx)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    lo_us, hi_us = ((t - epoch) // timedelta(microseconds=1) for t in (lo, hi))  # exact, no float rounding
    in_period = {i for i, r in records.items() if type(r[2]) is int and lo_us <= r[2] <= hi_us}
    if in_period != rows:
        raise Failed(f"the populations leave out records of the period: {sorted(in_period - rows)[:5]}")
    under = "two signed checkpoints" if start else "the signed end checkpoint, from the log's first record"
    return (f"OK evidence: {origin}, records {start}..{end - 1} complete under {under} "
            f"({end - start} records, {pruned} pruned to their hash), "
            f"{len(rows)} population rows in {lo.date()}..{hi.date()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Verify a soc2ai proof bundle or evidence bundle.")
    ap.add_argument("bundle", type=Path, nargs="?",
                    help="proof bundle (JSON) from `soc2ai log prove` or `log consistency`")
    ap.add_argument("--evidence", type=Path, help="evidence bundle directory from `soc2ai evidence export`")
    ap.add_argument("--pubkey", type=Path, action="append", required=True,
                    help="verifier key file (signing.pub; repeat for keys retired by rotation)")
    args = ap.parse_args(argv)
    if (args.bundle is None) == (args.evidence is None):
        ap.error("give a proof bundle or --evidence DIR")
    target = args.evidence or args.bundle
    try:
        keys = [parse_key(line) for f in args.pubkey for line in f.read_text().splitlines() if line.strip()]
        if args.evidence is not None:
            print(verify_evidence(args.evidence, keys))
            return 0
        bundle = json.loads(args.bundle.read_bytes())
        if not isinstance(bundle, dict):
            raise Failed("the bundle is not a JSON object")
        print(verify(bundle, keys))
        return 0
    except (Failed, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"FAIL {target}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
