"""Canary encodings and the raw-byte scan of everything the server left on disk.

Each canary is looked for as text in NFC and NFD (and the accent-folded, upper and lower forms the
blind index uses), each of those as UTF-8, UTF-16LE and UTF-16BE bytes, and each of those bytes as
lower/upper hex and base64 in its three alignments; plus JSON `\\u` escapes and URL encoding of the
text, and for the national ID its unkeyed SHA-256 / SHA-1 / MD5 digests (raw and hex): a store must
not hold an unkeyed hash of a low-entropy identifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from pathlib import Path
from urllib.parse import quote

from ehr.crypto.blind import fold_text

MIN_LEN = 8  # shorter patterns could match by chance in megabytes of ciphertext


def _base64_pieces(raw: bytes) -> set[bytes]:
    """The part of base64(x + raw + y) that depends only on raw, for the 3 offsets of raw."""
    out = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = 4 if shift else 0
        end = ((shift + len(raw)) // 3) * 4
        piece = encoded[start:end]
        out |= {piece, piece.replace(b"+", b"-").replace(b"/", b"_")}
    return out


def encodings(value: str, digests: bool = False) -> dict[bytes, str]:
    """pattern -> label, for one canary value."""
    forms = {"nfc": unicodedata.normalize("NFC", value), "nfd": unicodedata.normalize("NFD", value), "folded": fold_text(value)}
    forms |= {f"{k}-upper": v.upper() for k, v in list(forms.items())} | {f"{k}-lower": v.lower() for k, v in list(forms.items())}
    out: dict[bytes, str] = {}
    for fname, form in forms.items():
        for codec in ("utf-8", "utf-16-le", "utf-16-be"):
            raw = form.encode(codec)
            out.setdefault(raw, f"{fname}/{codec}")
            out.setdefault(raw.hex().encode(), f"{fname}/{codec}/hex")
            out.setdefault(raw.hex().upper().encode(), f"{fname}/{codec}/HEX")
            for piece in _base64_pieces(raw):
                out.setdefault(piece, f"{fname}/{codec}/base64")
        out.setdefault(json.dumps(form).strip('"').encode(), f"{fname}/json-escaped")
        out.setdefault(quote(form).encode(), f"{fname}/url")
        out.setdefault(quote(form, safe="").encode(), f"{fname}/url")
    if digests:
        for algo in ("sha256", "sha1", "md5"):
            digest = hashlib.new(algo, value.encode()).digest()
            out.setdefault(digest, f"{algo}/raw")
            out.setdefault(digest.hex().encode(), f"{algo}/hex")
            out.setdefault(base64.b64encode(digest), f"{algo}/base64")
    return {p: label for p, label in out.items() if len(p) >= MIN_LEN}


def patterns(canaries: dict[str, str]) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for name, value in canaries.items():
        for pattern, label in encodings(value, digests=name == "cccd").items():
            out.setdefault(pattern, f"{name}:{label}")
    return out


def scan_bytes(data: bytes, pats: dict[bytes, str]) -> list[str]:
    return sorted({label for pattern, label in pats.items() if pattern in data})


def scan_files(files: list[Path], pats: dict[bytes, str]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in files:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        found = scan_bytes(data, pats)
        if found:
            hits[str(path)] = found
    return hits
