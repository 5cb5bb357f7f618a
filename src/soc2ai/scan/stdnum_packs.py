"""Opt-in national identifier packs, validated with python-stdnum (checksums, no network).

Each pack is a list of (entity type, candidate regex, stdnum module). Candidates are shaped tightly
(exact lengths, fixed separators) so the checksum only has to reject the random look-alikes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence

PackEntry = tuple[str, re.Pattern[str], Callable[[str], bool], str]

_B = r"(?<![\w.-])"
_E = r"(?![\w]|[.-]\d)"

_PACKS: dict[str, list[tuple[str, str, str]]] = {
    "us": [("US_ITIN", r"9\d{2}-[7-9]\d-\d{4}", "us.itin"), ("US_EIN", r"\d{2}-\d{7}", "us.ein")],
    "gb": [("UK_NHS", r"\d{3}[ -]?\d{3}[ -]?\d{4}", "gb.nhs")],
    "de": [("DE_TAX_ID", r"\d{2} ?\d{3} ?\d{3} ?\d{3}", "de.idnr")],
    "fr": [("FR_NIR", r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2A|2B) ?\d{3} ?\d{3} ?\d{2}", "fr.nir")],
    "es": [("ES_NIF", r"\d{8}-?[A-Za-z]", "es.dni"), ("ES_NIE", r"[XYZxyz]-?\d{7}-?[A-Za-z]", "es.nie")],
    "it": [("IT_FISCAL_CODE", r"[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z]", "it.codicefiscale")],
    "nl": [("NL_BSN", r"\d{4}\.?\d{2}\.?\d{3}", "nl.bsn")],
    "in": [("IN_AADHAAR", r"[2-9]\d{3} ?\d{4} ?\d{4}", "in_.aadhaar"),
           ("IN_PAN", r"[A-Za-z]{5}\d{4}[A-Za-z]", "in_.pan")],
    "br": [("BR_CPF", r"\d{3}\.\d{3}\.\d{3}-\d{2}", "br.cpf")],
    "ca": [("CA_SIN", r"\d{3}[ -]\d{3}[ -]\d{3}", "ca.sin")],
    "au": [("AU_TFN", r"\d{3} ?\d{3} ?\d{3}", "au.tfn")],
}


def _validator(module_name: str) -> Callable[[str], bool]:
    mod = importlib.import_module(f"stdnum.{module_name}")
    is_valid: Callable[[str], bool] = mod.is_valid
    return is_valid


def load(packs: Sequence[str]) -> list[PackEntry]:
    """Compile the enabled packs (unknown names raise ``KeyError`` naming the pack)."""
    out: list[PackEntry] = []
    for pack in packs:
        try:
            entries = _PACKS[pack.lower()]
        except KeyError:
            raise KeyError(f"unknown stdnum pack {pack!r}; available: {', '.join(sorted(_PACKS))}") from None
        for etype, pattern, module in entries:
            out.append((etype, re.compile(_B + pattern + _E), _validator(module),
                        f"pii.stdnum.{module.rstrip('_').replace('_.', '.')}"))
    return out


def available() -> list[str]:
    """Names of the packs that can be enabled."""
    return sorted(_PACKS)
