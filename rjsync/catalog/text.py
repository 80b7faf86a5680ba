"""Script bytes to text, and the normalized form that content hashes are taken over.

Files come as UTF-8 with or without a BOM, or UTF-16/UTF-32 with a BOM, with CRLF or LF line
endings. Uploads keep the bytes verbatim; comparisons use the normalized form (no BOM, LF
endings, UTF-8) so that re-encoding a file alone is not a change.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class DecodedText:
    text: str  # BOM removed, line endings folded to LF
    encoding: str  # e.g. "utf-8-sig", "utf-16-le", "utf-8", "cp1252"
    exact: bool  # False when the bytes were not valid in any Unicode encoding we tried


def decode(data: bytes) -> DecodedText:
    """Decode script bytes the way PowerShell 7 does (BOM first, else UTF-8)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                text = data[len(bom):].decode(encoding, errors="replace")
                return DecodedText(fold_newlines(text), encoding + "-bom", False)
            return DecodedText(fold_newlines(text), encoding + "-bom", True)
    try:
        return DecodedText(fold_newlines(data.decode("utf-8")), "utf-8", True)
    except UnicodeDecodeError:
        # Windows PowerShell 5.1 reads a BOM-less file as ANSI; cp1252 is what that means
        # on the Western-European systems these runbooks are written on.
        return DecodedText(fold_newlines(data.decode("cp1252", errors="replace")), "cp1252", False)


def fold_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalized_sha256(data: bytes) -> str:
    """sha256 of the normalized content: BOM dropped, LF line endings, UTF-8."""
    return text_sha256(decode(data).text)


def text_sha256(text: str) -> str:
    """sha256 of already decoded and folded text (see ``decode``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
