#!/usr/bin/env python3
"""Encode Binance JSON depth20 recordings as SBE frames, from the schema XML.

An encoder independent of the Rust decoder: it knows nothing of src/sbe. Field
order, sizes, the message header, the group dimension encodings and the
varString8 layout all come from parsing `tests/fixtures/sbe/stream_1_0.xml`
(Binance's `sbe/schemas/stream_1_0.xml`, binance/binance-spot-api-docs) as the
SBE standard lays a message out: header, root block fields in order, each
repeating group (dimension header, then its entries), then the var data.

Each partial-depth frame of a recording (`<recv_unix_ns> <json>` per line)
becomes one DepthSnapshotStreamEvent:
  eventTime      = recv_unix_ns // 1000 (the JSON depth20 stream has no event time)
  bookUpdateId   = lastUpdateId
  priceExponent  = -(most fractional digits any price of the recording needs),
  qtyExponent    = the same for quantities: one exponent per symbol, as Binance
                   sends them (e.g. BTCUSDT: -2 and -5)
  bids, asks     = the levels, mantissas exact at those exponents
  symbol         = the stream name's symbol in upper case (BTCUSDT)

Output (`tests/fixtures/sbe/<recording>.sbe.gz`): gzip of the frames in
recording order, each as a little-endian uint32 length followed by the SBE
message bytes, exactly one binary WebSocket message's payload.

Usage:
  scripts/sbe_encode.py           write the fixtures
  scripts/sbe_encode.py --check   re-encode and compare with the committed
                                  fixtures byte for byte (CI); exit 1 on a difference
"""

import argparse
import gzip
import io
import json
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA = FIXTURES / "sbe" / "stream_1_0.xml"
RECORDINGS = [
    "btcusdt_depth20_100ms_20240808-09.txt.gz",
    "ethusdt_depth20_100ms_20240808-09.txt.gz",
]
SBE_NS = "{http://fixprotocol.io/2016/sbe}"

PRIMITIVES = {
    "char": "c",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
}


class SchemaError(Exception):
    pass


class Schema:
    """The parts of an SBE schema an encoder needs: types, messages, ids."""

    def __init__(self, path):
        root = ET.parse(path).getroot()
        if root.get("byteOrder", "littleEndian") != "littleEndian":
            raise SchemaError("only littleEndian schemas are supported")
        self.id = int(root.get("id"))
        self.version = int(root.get("version", "0"))
        self.package = root.get("package")
        self.header_type = root.get("headerType", "messageHeader")
        self.types = {}
        for types in root.findall("types"):
            for t in types:
                self.types[t.get("name")] = self._type(t)
        self.messages = {m.get("name"): m for m in root.findall(SBE_NS + "message")}

    @staticmethod
    def _type(t):
        if t.tag == "type":
            return ("primitive", PRIMITIVES[t.get("primitiveType")], int(t.get("length", "1")))
        if t.tag == "enum":
            values = {v.get("name"): int(v.text) for v in t.findall("validValue")}
            return ("enum", PRIMITIVES[t.get("encodingType")], values)
        if t.tag == "composite":
            parts = [(p.get("name"), PRIMITIVES[p.get("primitiveType")], int(p.get("length", "1"))) for p in t]
            return ("composite", parts)
        raise SchemaError(f"unsupported type element <{t.tag}>")

    def _field_format(self, field):
        """struct format of a field, or None for a constant (not on the wire)."""
        if field.get("presence") == "constant":
            return None
        kind = self.types[field.get("type")]
        if kind[0] == "primitive":
            if kind[2] != 1:
                raise SchemaError(f"array field {field.get('name')} not supported")
            return kind[1]
        if kind[0] == "enum":
            return kind[1]
        raise SchemaError(f"composite field {field.get('name')} not supported")

    def _encode_fields(self, fields, values):
        out = bytearray()
        for f in fields:
            fmt = self._field_format(f)
            if fmt is None:
                continue
            value = values[f.get("name")]
            kind = self.types[f.get("type")]
            if kind[0] == "enum" and isinstance(value, str):
                value = kind[2][value]
            out += struct.pack("<" + fmt, value)
        return bytes(out)

    def _composite(self, name, values):
        kind = self.types[name]
        if kind[0] != "composite":
            raise SchemaError(f"{name} is not a composite")
        return b"".join(struct.pack("<" + fmt, values[part]) for part, fmt, length in kind[1] if length == 1)

    def encode(self, message, root, groups, data):
        """One message: header, root block, groups, var data (SBE layout order)."""
        m = self.messages[message]
        fields = m.findall("field")
        block = self._encode_fields(fields, root)
        if m.get("blockLength") is not None:
            block = block.ljust(int(m.get("blockLength")), b"\0")
        header = self._composite(
            self.header_type,
            {"blockLength": len(block), "templateId": int(m.get("id")), "schemaId": self.id, "version": self.version},
        )
        out = bytearray(header + block)
        for g in m.findall("group"):
            entries = [self._encode_fields(g.findall("field"), e) for e in groups[g.get("name")]]
            entry_len = sum(struct.calcsize("<" + f) for f in map(self._field_format, g.findall("field")) if f)
            dimension = g.get("dimensionType", "groupSizeEncoding")
            out += self._composite(dimension, {"blockLength": entry_len, "numInGroup": len(entries)})
            out += b"".join(entries)
        for d in m.findall("data"):
            kind = self.types[d.get("type")]
            (_, length_fmt, _), _var = kind[1]
            payload = data[d.get("name")]
            out += struct.pack("<" + length_fmt, len(payload)) + payload
        return bytes(out)


def frac_digits(text):
    """Significant fractional digits of a plain decimal string ("3.78826000" -> 5)."""
    _, _, frac = text.partition(".")
    return len(frac.rstrip("0"))


def mantissa(text, exponent):
    """The integer m with m * 10**exponent == text exactly; refuses to round."""
    int_part, _, frac = text.partition(".")
    if not (int_part.isdigit() and (frac == "" or frac.isdigit())):
        raise ValueError(f"not a plain decimal: {text!r}")
    digits = int(int_part + frac)
    shift = -exponent - len(frac)  # digits is value * 10**len(frac); m is value * 10**-exponent
    if shift >= 0:
        return digits * 10**shift
    q, r = divmod(digits, 10 ** (-shift))
    if r:
        raise ValueError(f"{text} is not exact at exponent {exponent}")
    return q


def self_test():
    """The decimal rules on known values, so a slip here cannot hide in the fixtures."""
    assert mantissa("61837.63000000", -2) == 6183763
    assert mantissa("3.78826000", -5) == 378826
    assert mantissa("120", 1) == 12 and mantissa("0.5", -3) == 500
    for bad, exponent in (("0.123", -2), ("15", 1)):
        try:
            mantissa(bad, exponent)
        except ValueError:
            continue
        raise AssertionError(f"{bad} at {exponent} must be refused")
    assert frac_digits("3.78826000") == 5 and frac_digits("61837.00000000") == 0


def read_recording(path):
    frames = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            recv, _, body = line.rstrip("\n").partition(" ")
            frames.append((int(recv), json.loads(body)))
    return frames


def encode_recording(schema, path):
    frames = read_recording(path)
    prices = [lvl[0] for _, m in frames for side in ("bids", "asks") for lvl in m["data"][side]]
    qtys = [lvl[1] for _, m in frames for side in ("bids", "asks") for lvl in m["data"][side]]
    price_exp = -max(map(frac_digits, prices))
    qty_exp = -max(map(frac_digits, qtys))
    out = io.BytesIO()
    for recv_ns, msg in frames:
        data = msg["data"]
        side = lambda levels: [{"price": mantissa(p, price_exp), "qty": mantissa(q, qty_exp)} for p, q in levels]
        frame = schema.encode(
            "DepthSnapshotStreamEvent",
            {
                "eventTime": recv_ns // 1000,
                "bookUpdateId": data["lastUpdateId"],
                "priceExponent": price_exp,
                "qtyExponent": qty_exp,
            },
            {"bids": side(data["bids"]), "asks": side(data["asks"])},
            {"symbol": msg["stream"].split("@")[0].upper().encode("utf-8")},
        )
        out.write(struct.pack("<I", len(frame)) + frame)
    return out.getvalue(), len(frames), price_exp, qty_exp


def output_path(recording):
    return FIXTURES / "sbe" / recording.replace(".txt.gz", ".sbe.gz")


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures instead of writing")
    args = parser.parse_args()
    self_test()
    schema = Schema(SCHEMA)
    if (schema.package, schema.id, schema.version) != ("spot_stream", 1, 0):
        sys.exit(f"{SCHEMA}: expected spot_stream 1:0, found {schema.package} {schema.id}:{schema.version}")
    failed = False
    for name in RECORDINGS:
        encoded, count, price_exp, qty_exp = encode_recording(schema, FIXTURES / name)
        target = output_path(name)
        rel = target.relative_to(ROOT)
        if args.check:
            try:
                committed = gzip.decompress(target.read_bytes())
            except FileNotFoundError:
                print(f"{rel}: missing; run scripts/sbe_encode.py", file=sys.stderr)
                failed = True
                continue
            if committed != encoded:
                at = first_difference(committed, encoded)
                print(
                    f"{rel}: differs from a fresh encoding of {name} at byte {at} "
                    f"({len(committed)} committed, {len(encoded)} encoded); run scripts/sbe_encode.py",
                    file=sys.stderr,
                )
                failed = True
            else:
                print(f"{rel}: {count} frames, identical to a fresh encoding")
        else:
            with open(target, "wb") as f:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
                    gz.write(encoded)
            print(f"{rel}: {count} frames, priceExponent {price_exp}, qtyExponent {qty_exp}, {len(encoded)} bytes")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
