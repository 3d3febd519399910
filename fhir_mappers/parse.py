"""From inbound bytes to a parsed message: framing, byte-order mark, character set, separators.

Parsing is a split into segments and raw field texts; components, repetitions and escapes are handled
by the data-type functions, only for the fields a mapper reads. python-hl7 parsed the whole message
eagerly and took 60% of the normalizer's time (bench/hl7_parse_bench.py); tests check this splitter
against python-hl7 field by field on the corpus.
"""

from __future__ import annotations

import re

from fhir_mappers.errors import HL7MappingError

# MSH-18 values -> Python codecs (HL7 table 0211)
CHARSETS = {"ASCII": "ascii", "8859/1": "latin-1", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8", "UNICODE": "utf-8",
            "8859/2": "iso8859-2", "8859/5": "iso8859-5", "8859/7": "iso8859-7", "8859/9": "iso8859-9"}
SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def _charset_from_msh(raw: bytes) -> str | None:
    first = raw.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    if len(first) < 8 or not first.startswith("MSH"):
        return None
    fields = first.split(first[3])
    # fields[0] is "MSH", fields[1] the encoding characters, so MSH-n is fields[n - 1]
    value = fields[17].split(first[4])[0].strip() if len(fields) > 17 else ""
    return CHARSETS.get(value.upper()) if value else None


def decode(raw: bytes | str) -> str:
    """Text with segments separated by CR, whatever framing and separators the sender used."""
    if isinstance(raw, bytes):
        raw = raw.strip(b"\x0b\x1c\r\n\t ")
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            charset = _charset_from_msh(raw)
            if charset is None or charset == "utf-8":
                raise HL7MappingError(f"message is not valid UTF-8 (byte {exc.start}) and MSH-18 declares no other character set") from None
            try:
                text = raw.decode(charset)
            except UnicodeDecodeError:
                raise HL7MappingError(f"message does not decode with the MSH-18 character set {charset}") from None
    else:
        text = raw.strip("\x0b\x1c\r\n\t \ufeff")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    return "\r".join(line for line in text.split("\r") if line.strip())


class Segment:
    """Raw field texts of one segment, numbered as the standard numbers them (MSH-1 is the field
    separator itself, so MSH fields sit one place further than a plain split puts them)."""

    __slots__ = ("text", "fields", "is_msh", "read", "read_chars")

    def __init__(self, text: str, separator: str) -> None:
        self.text = text
        self.fields = text.split(separator)
        self.is_msh = self.fields[0] == "MSH"
        if self.is_msh:
            self.fields.insert(1, separator)
        # datatypes.field sets read[n] once a mapper has read field n and counts the characters of the fields read in
        # read_chars: when that falls short of the text's, less its separators and id, some field was left unread
        # (header.unread_fields reports it)
        self.read = bytearray(len(self.fields))
        self.read_chars = 0

    def __getitem__(self, n: int) -> str:
        """Field n, as the splitter sees it (tests, the segment id); mappers read through datatypes.field, which marks it read."""
        return self.fields[n] if n < len(self.fields) else ""

    def __str__(self) -> str:
        return self.text


def parse_er7(text: str) -> list[Segment]:
    """Check the envelope of the message, then split it into segments and fields."""
    if not text:
        raise HL7MappingError("message is empty")
    segments = text.split("\r")
    if not segments[0].startswith("MSH"):
        head = segments[0][:3]
        raise HL7MappingError(f"first segment is {head!r}, not MSH" if SEGMENT_ID.match(head) else "message does not start with an MSH segment")
    msh = segments[0]
    if len(msh) < 8 or msh[3] in "^~\\&" or len(set(msh[3:8])) != 5:
        raise HL7MappingError("MSH-1/MSH-2 encoding characters are missing or invalid")
    sep = msh[3]
    if msh[4:8] != "^~\\&":
        # the data-type functions split on the standard characters; mis-splitting silently would be worse
        raise HL7MappingError("MSH-2 declares non-standard encoding characters, which are not supported")
    for i, seg in enumerate(segments, 1):
        if not SEGMENT_ID.match(seg[:3]) or (len(seg) > 3 and seg[3] != sep):
            raise HL7MappingError(f"segment {i} does not start with a valid segment id")
    return [Segment(seg, sep) for seg in segments]
