"""Cached completions in Redis.

Layout (the gateway's cache, soc2ai.gateway.cache): ``<prefix><hash>`` holds a JSON value with
``subject_ref`` (the ledger's keyed subject reference), ``classification`` and the cached completion; the
set ``<prefix>subject:<subject_ref>`` indexes a subject's ``<hash>`` members. Find = the subject sets of the subject's refs + lineage-recorded keys + a
discovery scan of every value under the prefix for the subject's identifiers (copies nobody indexed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from soc2ai.data.connectors._match import blob_hit, probes
from soc2ai.data.connectors.interface import LABEL_FIELD, Census, Expiry, Location, Subject, verify_by_find
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import ConnectorError

EXPIRES_FIELD = "soc2ai_expires_at"
BATCH = 1000


class RedisConnector:
    """Keys under one prefix in one Redis database."""

    type = "redis"

    def __init__(self, settings: ConnectorSettings, *, client: Any = None) -> None:
        self.name = settings.name
        self._s = settings
        self._prefix = settings.prefix
        self.notes: list[str] = []
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - extra installed in CI
            raise ConnectorError("the Redis connector needs the 'redis' extra") from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._r: Any = client or redis.Redis.from_url(settings.url or "", socket_connect_timeout=3, socket_timeout=30)
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise ConnectorError(f"{self.name}: Redis unreachable ({exc})") from exc

    def _subject_set(self, ref: str) -> str:
        return f"{self._prefix}subject:{ref}"

    def _scan(self) -> Iterator[list[bytes]]:
        """Cache keys (not index sets) in batches."""
        batch: list[bytes] = []
        index = f"{self._prefix}subject:".encode()
        for key in self._r.scan_iter(match=f"{self._prefix}*", count=BATCH):
            if key.startswith(index):
                continue
            batch.append(key)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _values(self) -> Iterator[tuple[bytes, bytes]]:
        for keys in self._scan():
            for key, value in zip(keys, self._r.mget(keys), strict=True):
                if value is not None:
                    yield key, value

    def find(self, subject: Subject) -> list[Location]:
        """Keys indexed under the subject's refs, recorded by lineage, or whose value names them."""
        self.notes = []
        found: dict[str, str] = {}
        try:
            for ref in subject.refs:
                for member in self._r.smembers(self._subject_set(ref)):
                    # The gateway indexes bare hashes; accept full keys too.
                    key = member.decode()
                    found.setdefault(key if key.startswith(self._prefix) else self._prefix + key, "subject")
            known = sorted(subject.known_ids(self.name, self._prefix))
            if known:
                for key, exists in zip(known, self._r.mget(known), strict=True):
                    if exists is not None:
                        found.setdefault(key, "lineage")
            if self._s.discovery:
                needles = subject.needles()
                raw = probes(needles)
                for key, value in self._values():
                    low = value.lower()
                    if any(n in low for n in raw) and blob_hit(value, needles) is not None:
                        found.setdefault(key.decode(), "discovery")
            # Index entries whose key is gone are still the subject's data (the ref itself).
            for ref in subject.refs:
                if self._r.exists(self._subject_set(ref)):
                    found.setdefault(self._subject_set(ref), "subject")
        except self._errors as exc:
            raise ConnectorError(f"{self.name}: Redis failed during find ({exc})") from exc
        # Keys listed in an index set but already expired are not data; drop them.
        live = [k for k in found if not k.startswith(f"{self._prefix}subject:")]
        present: set[str] = set()
        for i in range(0, len(live), BATCH):
            chunk = live[i:i + BATCH]
            present.update(k for k, v in zip(chunk, self._r.mget(chunk), strict=True) if v is not None)
        return [Location(self.name, self._prefix, k, how) for k, how in sorted(found.items())
                if k in present or k.startswith(f"{self._prefix}subject:")]

    def export(self, locations: Sequence[Location]) -> Iterator[dict[str, Any]]:
        """Each cached value (parsed JSON when it is JSON) with its key and TTL."""
        for loc in locations:
            if loc.item_id.startswith(f"{self._prefix}subject:"):
                continue
            value = self._r.get(loc.item_id)
            if value is None:
                continue
            try:
                parsed: Any = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = value.decode("utf-8", "replace")
            yield {"key": loc.item_id, "ttl_s": self._r.ttl(loc.item_id), "value": parsed}

    def delete(self, subject: Subject, locations: Sequence[Location]) -> int:
        """DEL the keys and the subject's index sets."""
        keys = sorted({loc.item_id for loc in locations} | {self._subject_set(r) for r in subject.refs})
        n = 0
        try:
            for i in range(0, len(keys), BATCH):
                n += int(self._r.delete(*keys[i:i + BATCH]))
        except self._errors as exc:
            raise ConnectorError(f"{self.name}: Redis failed during delete ({exc})") from exc
        return n

    def verify_deleted(self, subject: Subject) -> None:
        """Raise if a fresh find still sees keys of the subject."""
        verify_by_find(self, subject)

    def expire(self, expiry: Expiry, *, dry_run: bool) -> dict[str, int]:
        """Delete values whose ``soc2ai_expires_at`` has passed (values without it keep their Redis TTL)."""
        counts: dict[str, int] = {}
        doomed: list[bytes] = []
        for key, value in self._values():
            try:
                doc = orjson.loads(value)
                raw_exp = doc.get(EXPIRES_FIELD) if isinstance(doc, dict) else None
                exp = int(raw_exp) if raw_exp else None
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue
            if exp is not None and exp < expiry.now_s:
                label = str(doc.get(LABEL_FIELD) or "unlabelled")
                counts[label] = counts.get(label, 0) + 1
                doomed.append(key)
        if not dry_run:
            for i in range(0, len(doomed), BATCH):
                self._r.delete(*doomed[i:i + BATCH])
        return counts

    def census(self) -> list[Census]:
        """Cache entries and how many carry no label (``soc2ai_label`` or ``classification``)."""
        total = unlabelled = 0
        for _, value in self._values():
            total += 1
            try:
                doc = orjson.loads(value)
            except orjson.JSONDecodeError:
                unlabelled += 1
                continue
            if not isinstance(doc, dict) or not (doc.get(LABEL_FIELD) or doc.get("classification")):
                unlabelled += 1
        return [Census(self.name, self._prefix, total, unlabelled)]

    def close(self) -> None:
        """Close the client."""
        self._r.close()
