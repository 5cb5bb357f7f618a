"""Train the shipped prompt-injection classifier (hashed n-grams + logistic regression, numpy only).

    python scripts/train_injection.py                       # train on the shared split, write weights
    python scripts/train_injection.py --extra other.csv      # replace the default augmentation set

Reads ``train.csv`` (``text,label``) plus the augmentation set, selects the epoch count on
``validation.csv``, refits on train + validation with that count (``--no-refit`` to skip), reports test
metrics, and writes ``src/soc2ai/scan/injection_model.npz`` (float16 weights, about 0.5 MB).
Deterministic: fixed seed, full-batch Adam, no sampling.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from soc2ai.scan._features import featurize  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "injection"
AUG = ROOT / "benchmarks" / "data" / "injection_aug.csv"
OUT = ROOT / "src" / "soc2ai" / "scan" / "injection_model.npz"


def load_csv(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype=np.float64)


class Design:
    """A sparse design matrix as (bucket index, row id, value) triples."""

    def __init__(self, texts: list[str], bits: int) -> None:
        feats = [featurize(t, bits) for t in texts]
        lens = np.array([max(len(f), 1) for f in feats], dtype=np.float64)
        self.idx = np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64)
        self.row = np.repeat(np.arange(len(texts)), [len(f) for f in feats])
        self.val = (1.0 / np.sqrt(lens))[self.row]
        self.n = len(texts)

    def logits(self, w: np.ndarray, b: float) -> np.ndarray:
        return np.bincount(self.row, weights=w[self.idx] * self.val, minlength=self.n) + b


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def metrics(y: np.ndarray, p: np.ndarray, thr: float) -> dict[str, float]:
    pred = p >= thr
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "fpr": fp / (fp + tn) if fp + tn else 0.0}


def train(x: Design, y: np.ndarray, dim: int, epochs: int, lr: float, l2: float,
          pos_weight: float, val: tuple[Design, np.ndarray] | None = None) -> tuple[np.ndarray, float, int]:
    w = np.zeros(dim)
    b = 0.0
    m_w, v_w = np.zeros(dim), np.zeros(dim)
    m_b = v_b = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    sw = np.where(y == 1, pos_weight, 1.0)
    sw = sw / sw.mean()
    best = (-1.0, w.copy(), b, 0)
    for epoch in range(1, epochs + 1):
        p = sigmoid(x.logits(w, b))
        g = (p - y) * sw / x.n
        g_w = np.bincount(x.idx, weights=g[x.row] * x.val, minlength=dim) + l2 * w
        g_b = float(g.sum())
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        c1, c2 = 1 - beta1**epoch, 1 - beta2**epoch
        w -= lr * (m_w / c1) / (np.sqrt(v_w / c2) + eps)
        b -= lr * (m_b / c1) / (np.sqrt(v_b / c2) + eps)
        if val is not None and epoch % 10 == 0:
            vx, vy = val
            f1 = metrics(vy, sigmoid(vx.logits(w, b)), 0.5)["f1"]
            if f1 > best[0]:
                best = (f1, w.copy(), b, epoch)
    if val is None:
        return w, b, epochs
    return best[1], best[2], best[3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--extra", type=Path, action="append", default=None,
                    help="extra text,label CSVs added to training (never the cross-source eval set); "
                         "default: benchmarks/data/injection_aug.csv")
    ap.add_argument("--bits", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--l2", type=float, default=1e-5)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-refit", action="store_true",
                    help="ship the model selected on validation instead of refitting on train + validation")
    args = ap.parse_args()

    t0 = time.perf_counter()
    tr_t, tr_y = load_csv(args.data / "train.csv")
    sources = [str(args.data / "train.csv")]
    extras = args.extra if args.extra is not None else [AUG]
    for extra in extras:
        et, ey = load_csv(extra)
        tr_t += et
        tr_y = np.concatenate([tr_y, ey])
        sources.append(str(extra))
    va_t, va_y = load_csv(args.data / "validation.csv")
    te_t, te_y = load_csv(args.data / "test.csv")
    dim = 1 << args.bits
    xtr, xva, xte = Design(tr_t, args.bits), Design(va_t, args.bits), Design(te_t, args.bits)
    pos_weight = float((tr_y == 0).sum() / max((tr_y == 1).sum(), 1))
    w, b, best_epoch = train(xtr, tr_y, dim, args.epochs, args.lr, args.l2, pos_weight, (xva, va_y))
    if not args.no_refit:
        # Final model: same settings and the epoch count chosen on validation, now also trained on the
        # validation split; test stays unseen except for the 116 rows test shares with validation
        # (benchmarks/scan_eval.py also reports test without them).
        print(f"selected epoch {best_epoch}; refitting on train + validation")
        xall = Design(tr_t + va_t, args.bits)
        yall = np.concatenate([tr_y, va_y])
        w, b, best_epoch = train(xall, yall, dim, best_epoch, args.lr, args.l2, pos_weight)
        sources.append(str(args.data / "validation.csv"))
    w16 = w.astype(np.float16)
    w_eval = w16.astype(np.float64)
    pva = sigmoid(xva.logits(w_eval, b))
    pte = sigmoid(xte.logits(w_eval, b))
    print(f"trained on {len(tr_t)} rows in {time.perf_counter() - t0:.1f}s; best epoch {best_epoch}")
    print("validation@0.5" + (" (seen in training)" if not args.no_refit else ""), json.dumps({k: round(v, 4) for k, v in metrics(va_y, pva, 0.5).items()}))
    print("test@0.5      ", json.dumps({k: round(v, 4) for k, v in metrics(te_y, pte, 0.5).items()}))
    digest = hashlib.sha256()
    for src in sources:
        digest.update(Path(src).read_bytes())
    meta = {"bits": args.bits, "epochs": best_epoch, "lr": args.lr, "l2": args.l2, "rows": len(tr_t),
            "train_sha256": digest.hexdigest(), "sources": [Path(s).name for s in sources]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, w=w16, b=np.array([b], dtype=np.float32), bits=np.array([args.bits]),
                        meta=np.array(json.dumps(meta)))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
