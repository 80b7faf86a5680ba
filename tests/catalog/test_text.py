import codecs

from rjsync.catalog.text import decode, normalized_sha256

SCRIPT = "<#\n.SYNOPSIS\nGrüße – ok.\n#>\nparam([string]$Name)\n"


def test_decode_reads_every_encoding_the_upstream_uses():
    lf = SCRIPT
    crlf = SCRIPT.replace("\n", "\r\n")
    variants = {
        "utf-8": lf.encode("utf-8"),
        "utf-8-bom": codecs.BOM_UTF8 + crlf.encode("utf-8"),
        "utf-16-le-bom": codecs.BOM_UTF16_LE + crlf.encode("utf-16-le"),
        "utf-16-be-bom": codecs.BOM_UTF16_BE + lf.encode("utf-16-be"),
    }
    for encoding, data in variants.items():
        decoded = decode(data)
        assert (decoded.text, decoded.encoding, decoded.exact) == (SCRIPT, encoding, True)


def test_normalized_sha256_ignores_bom_and_line_endings_but_not_content():
    plain = normalized_sha256(SCRIPT.encode("utf-8"))
    assert normalized_sha256(codecs.BOM_UTF8 + SCRIPT.replace("\n", "\r\n").encode()) == plain
    assert normalized_sha256(codecs.BOM_UTF16_LE + SCRIPT.encode("utf-16-le")) == plain
    assert normalized_sha256(SCRIPT.replace("ok", "OK").encode()) != plain


def test_decode_falls_back_to_ansi_for_bomless_non_utf8():
    decoded = decode("Grüße\r\n".encode("cp1252"))
    assert (decoded.text, decoded.encoding, decoded.exact) == ("Grüße\n", "cp1252", False)
