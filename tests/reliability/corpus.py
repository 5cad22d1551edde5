"""A deterministic corpus of malformed FHIR requests, and a raw HTTP/1.1 client to send them.

`corpus(seed, n, ctx)` yields n requests, cycling through the categories below; each category
mutates valid fixtures with the seeded generator, so a seed always gives the same corpus. Every
request is malformed at the FHIR level (the HTTP framing is valid: request lines below gunicorn's
4,094-byte limit, well-formed headers) and must be answered 4xx with an OperationOutcome.

The raw client writes the request bytes itself because an HTTP library would "fix" the very things
under test: it normalizes dot segments (`/fhir/Patient/../x`), percent-encodes or refuses bytes,
and sets Content-Type and Content-Length by itself.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Case:
    category: str
    label: str
    method: str
    target: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", FHIR_JSON),)
    chunked: bool = False
    content_length: int | None = None  # a Content-Length that differs from the body (a lying client)

    def describe(self) -> str:
        body = self.body[:160]
        more = f"... ({len(self.body)} bytes)" if len(self.body) > 160 else ""
        return f"[{self.category}/{self.label}] {self.method} {self.target[:200]} headers={list(self.headers)} body={body!r}{more}"


@dataclass
class Context:
    """Existing resources and paging tokens on the server, so mutations reach deep code paths."""

    patient_id: str
    observation_id: str
    search_token: str
    history_token: str
    body_limit: int
    dtd_url: str  # a loopback listener: an XML parser that fetched an external DTD would hit it


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    error: str | None = None


# --- the raw client ---------------------------------------------------------------------------


def send(port: int, case: Case, timeout: float = 30.0) -> Result:
    started = time.monotonic()
    lines = [f"{case.method} {case.target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", "Accept: application/fhir+json"]
    names = {k.lower() for k, _ in case.headers}
    if "accept" in names:
        lines.remove("Accept: application/fhir+json")
    lines += [f"{k}: {v}" for k, v in case.headers]
    payload = case.body
    if case.chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(case.body[i:i + 65536]), case.body[i:i + 65536]) for i in range(0, len(case.body), 65536)) + b"0\r\n\r\n"
    elif case.content_length is not None:
        lines.append(f"Content-Length: {case.content_length}")
    elif case.body or case.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(case.body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    received = bytearray()
    error = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.setblocking(False)
            view = memoryview(request)
            deadline = started + timeout
            done_sending = False
            while True:
                want_write = [sock] if not done_sending else []
                readable, writable, _ = select.select([sock], want_write, [], max(0.0, deadline - time.monotonic()))
                if not readable and not writable:
                    error = "timeout"
                    break
                if readable:
                    try:
                        chunk = sock.recv(1 << 16)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    received += chunk
                    done_sending = True  # the server answered (early, for example 413): stop sending
                if writable and not done_sending:
                    try:
                        sent = sock.send(view[:1 << 16])
                    except (BrokenPipeError, ConnectionResetError):
                        done_sending = True
                        continue
                    view = view[sent:]
                    if not view:
                        done_sending = True
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    if not head:
        return Result(0, {}, b"", seconds, error or "no response")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        return Result(0, {}, bytes(received), seconds, "bad status line")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Result(status, headers, body, seconds, error)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


# --- fixtures ---------------------------------------------------------------------------------


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "active": True,
        "name": [{"family": "Phạm", "given": ["Thu", "Hà"], "text": "Phạm Thu Hà"}],
        "gender": "female",
        "birthDate": "1990-05-17",
        "telecom": [{"system": "phone", "value": "0901234567"}],
        "address": [{"line": ["12 Lê Lợi"], "city": "Huế", "country": "VN"}],
    }


def observation(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-03-04T08:15:00+07:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


Gen = Callable[[random.Random, Context], Case]
CATEGORIES: dict[str, Gen] = {}


def category(name: str) -> Callable[[Gen], Gen]:
    def register(fn: Gen) -> Gen:
        CATEGORIES[name] = fn
        return fn
    return register


def _write_target(rng: random.Random, ctx: Context, rtype: str = "Patient") -> tuple[str, str]:
    """POST [type] or PUT [type]/[id] (an existing one), at random."""
    if rng.random() < 0.6:
        return "POST", f"/fhir/{rtype}"
    rid = ctx.patient_id if rtype == "Patient" else ctx.observation_id
    return "PUT", f"/fhir/{rtype}/{rid}"


def _fixture(rng: random.Random, ctx: Context, method: str, rtype: str) -> dict[str, Any]:
    doc = patient() if rtype == "Patient" else observation(f"Patient/{ctx.patient_id}")
    if method == "PUT":
        doc["id"] = ctx.patient_id if rtype == "Patient" else ctx.observation_id
    return doc


# --- categories -------------------------------------------------------------------------------


@category("bad-json")
def bad_json(rng: random.Random, ctx: Context) -> Case:
    rtype = rng.choice(["Patient", "Observation"])
    method, target = _write_target(rng, ctx, rtype)
    valid = dumps(_fixture(rng, ctx, method, rtype))
    kind = rng.randrange(12)
    if kind == 0:
        body, label = valid[: rng.randrange(1, len(valid) - 1)], "truncated"
    elif kind == 1:
        pos = rng.randrange(len(valid))
        body, label = valid[:pos] + bytes([rng.choice([0, 1, 2, 8, 11, 12, 14, 27, 31])]) + valid[pos:], "control byte"
    elif kind == 2:
        body, label = valid + rng.choice([b"x", b"}", b",", b"]", b"{}", b" true", b"\x00"]), "trailing garbage"
    elif kind == 3:
        body, label = valid.replace(b'"', b"'"), "single quotes"
    elif kind == 4:
        body, label = valid[:-1] + b",}", "trailing comma"
    elif kind == 5:
        body, label = b"/* comment */" + valid, "comment"
    elif kind == 6:
        body, label = valid.replace(b'"resourceType"', b"resourceType", 1), "unquoted key"
    elif kind == 7:
        body, label = valid[:-1] + b', "multipleBirthInteger": ' + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"01", b"+1", b".5", b"1.", b"0x10"]) + b"}", "bad number"
    elif kind == 8:
        body, label = valid[:-1] + b', "gender": "male"}', "duplicate key"
    elif kind == 9:
        body, label = rng.choice([b"", b"   ", b"\r\n", b"[]", b"null", b"true", b"42", b'"Patient"', b"\xef\xbb\xbf" + valid]), "not an object"
    elif kind == 10:
        body, label = valid.replace(b'"Ph', b'"\\ud800Ph', 1).replace(b'"Heart', b'"\\udfffHeart', 1), "lone surrogate escape"
    else:
        body, label = valid.replace(b'"final"', b'"fin\\qal"', 1).replace(b'"female"', b'"fe\\x41male"', 1), "invalid escape"
    if body == valid:
        body = valid[:-1]
    return Case("bad-json", label, method, target, body)


WRONG_TYPES: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "Patient": [
        (("active",), "true"), (("active",), 1), (("active",), None), (("active",), []), (("active",), {}),
        (("gender",), 1), (("gender",), True), (("gender",), ["female"]), (("gender",), {}), (("gender",), " female"), (("gender",), ""),
        (("birthDate",), 19900517), (("birthDate",), "1990-13-45"), (("birthDate",), "17/05/1990"), (("birthDate",), True), (("birthDate",), "1990-02-30"),
        (("birthDate",), "0000-01-01"), (("birthDate",), "10000-01-01"), (("birthDate",), "1990-5-17"),
        (("name",), "Phạm Thu Hà"), (("name",), {}), (("name",), [1]), (("name",), [[]]), (("name",), [{"given": "Thu"}]), (("name",), [{"family": ["Phạm"]}]),
        (("name",), []), (("name",), [{}]), (("telecom",), [{"system": 5, "value": "1"}]), (("telecom",), [{"value": 123}]),
        (("resourceType",), 5), (("resourceType",), None), (("resourceType",), ""), (("resourceType",), "patient"), (("resourceType",), "Foo"),
        (("resourceType",), "Observation"), (("unknownElement",), 1), (("_birthDate",), 5), (("extension",), [{"url": 5}]),
        (("extension",), [{"valueString": "x"}]), (("extension",), "x"), (("meta",), []), (("text",), "x"), (("contained",), {}),
        (("multipleBirthInteger",), "2"), (("multipleBirthInteger",), 2.5), (("deceasedBoolean",), "no"),
        (("deceasedBoolean",), True, ), (("communication",), [{"language": "vi"}]), (("address",), [{"line": "12 Lê Lợi"}]),
        (("managingOrganization",), "Organization/1"), (("link",), [{"other": {"reference": "Patient/x"}, "type": "bogus"}]),
    ],
    "Observation": [
        (("status",), 5), (("status",), "final  x"), (("status",), None), (("status",), ["final"]),
        (("valueQuantity", "value"), "72"), (("valueQuantity", "value"), True), (("valueQuantity",), 72), (("valueQuantity", "code"), 5),
        (("code",), "8867-4"), (("code", "coding"), {"code": "8867-4"}), (("code", "coding"), [{"system": 5}]),
        (("subject",), "Patient/x"), (("subject", "reference"), 5), (("subject",), {"reference": ""}),
        (("effectiveDateTime",), "yesterday"), (("effectiveDateTime",), 20260101), (("effectiveDateTime",), "2026-03-04T25:00:00Z"),
        (("effectiveDateTime",), "2026-03-04T08:15:00"), (("valueString",), "also a string"), (("component",), {}),
        (("component",), [{"valueQuantity": {"value": 1}}]), (("referenceRange",), [{"low": "1"}]), (("issued",), "2026-03-04"),
        (("interpretation",), {"text": "x"}), (("category",), {"text": "vital-signs"}), (("note",), [{"text": 5}]),
    ],
}


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


@category("wrong-types")
def wrong_types(rng: random.Random, ctx: Context) -> Case:
    rtype = rng.choice(["Patient", "Observation"])
    method, target = _write_target(rng, ctx, rtype)
    doc = _fixture(rng, ctx, method, rtype)
    path, value = rng.choice(WRONG_TYPES[rtype])[:2]
    if path == ("deceasedBoolean",) and value is True:
        doc["deceasedDateTime"] = "2020-01-01"  # two choices of deceased[x] at once
    _set(doc, path, value)
    if rng.random() < 0.1:  # the same mutation inside a transaction
        entry: dict[str, Any] = {"resource": doc, "request": {"method": "POST", "url": rtype}}
        if method == "PUT":
            entry["request"] = {"method": "PUT", "url": f"{rtype}/{doc['id']}"}
        return Case("wrong-types", f"bundle {'.'.join(path)}={value!r}"[:80], "POST", "/fhir", dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]}))
    return Case("wrong-types", f"{'.'.join(path)}={value!r}"[:80], method, target, dumps(doc))


@category("deep-nesting")
def deep_nesting(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(5)
    depth = rng.choice([200, 1000, 5000, 20000, 100000])
    if kind == 0:
        body, label = b"[" * depth + b"]" * depth, f"arrays {depth}"
    elif kind == 1:
        body, label = b'{"a":' * depth + b"1" + b"}" * depth, f"objects {depth}"
    elif kind == 2:
        depth = min(depth, 20000)
        inner = b'{"url":"http://x.vn/e","extension":[' * depth + b'{"url":5}' + b"]}" * depth
        body, label = b'{"resourceType":"Patient","extension":[' + inner + b"]}", f"extensions {depth}"
        if len(body) > ctx.body_limit:
            body, label = b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}", f"extension arrays {depth}"
    elif kind == 3:
        depth = min(depth, 5000)
        inner: Any = {"resourceType": "Patient", "active": "x"}
        for _ in range(depth):
            inner = {"resourceType": "Patient", "contained": [inner]}
        try:
            body = dumps(inner)
        except RecursionError:
            body = b'{"resourceType":"Patient","contained":[' * depth + b'{"resourceType":"Patient"}' + b"]}" * depth
        label = f"contained {depth}"
    else:
        body = b'{"resourceType":"Bundle","type":"transaction","entry":[{"resource":' * min(depth, 5000) + b"{}" + b"}]}" * min(depth, 5000)
        label = f"bundles {min(depth, 5000)}"
        return Case("deep-nesting", label, "POST", "/fhir", body)
    method, target = _write_target(rng, ctx)
    return Case("deep-nesting", label, method, target, body)


@category("huge-numbers")
def huge_numbers(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(6)
    if kind <= 2:
        number = rng.choice([str(2**31), str(2**63), "1" + "0" * 30, str(-(2**31) - 1), "9" * 5000, "9" * 100000, "1e400", "-1e400", "1E+999999999"])
        field = rng.choice(["multipleBirthInteger"])
        doc = dumps(patient())[:-1] + f', "{field}": {number}}}'.encode()
        return Case("huge-numbers", f"{field}={number[:20]}", "POST", "/fhir/Patient", doc)
    if kind == 3:
        number = rng.choice([str(2**31), "9" * 5000, "9" * 100000, "-" + "9" * 4301])
        doc = dumps(observation(f"Patient/{ctx.patient_id}")).replace(b'"valueQuantity"', b'"valueInteger": ' + number.encode() + b', "x_valueQuantity"', 1)
        doc = doc.replace(b', "x_valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}', b"")
        return Case("huge-numbers", f"valueInteger={number[:20]}", "POST", "/fhir/Observation", doc)
    if kind == 4:
        vid = rng.choice(["99999999999999999999", "2147483648", "-1", "0", "1e3", "1.5"])
        return Case("huge-numbers", f"vid={vid}", "GET", f"/fhir/Patient/{ctx.patient_id}/_history/{vid}", b"", ())
    value = rng.choice(['W/"99999999999"', 'W/"-1"', 'W/"1e3"', '"' + "9" * 400 + '"'])
    doc = patient() | {"id": ctx.patient_id}
    return Case("huge-numbers", f"If-Match {value[:20]}", "PUT", f"/fhir/Patient/{ctx.patient_id}", dumps(doc), (("Content-Type", FHIR_JSON), ("If-Match", value)))


@category("huge-strings")
def huge_strings(rng: random.Random, ctx: Context) -> Case:
    size = rng.choice([70_000, 150_000, 250_000])
    big = "".join(rng.choice("aăâbcdđeêghiklmnoôơpqrstuưvxy") for _ in range(200)) * (size // 200)
    kind = rng.randrange(6)
    if kind == 0:
        return Case("huge-strings", f"id of {size // 100} in URL", "GET", f"/fhir/Patient/{'a' * rng.choice([65, 300, 3000])}", b"", ())
    if kind == 1:
        return Case("huge-strings", "huge resourceType", "POST", "/fhir/Patient", dumps({"resourceType": big}))
    if kind == 2:
        return Case("huge-strings", "huge code", "POST", "/fhir/Patient", dumps(patient() | {"gender": big + "  x"}))
    if kind == 3:
        return Case("huge-strings", "huge element name", "POST", "/fhir/Patient", dumps(patient() | {big: 1}))
    if kind == 4:
        return Case("huge-strings", "huge date", "POST", "/fhir/Patient", dumps(patient() | {"birthDate": "1990-05-17" + big}))
    return Case("huge-strings", "huge id in body", "PUT", f"/fhir/Patient/{ctx.patient_id}", dumps(patient() | {"id": big}))


INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xc3\x28",
                b"\xf4\x90\x80\x80"]


@category("invalid-utf8")
def invalid_utf8(rng: random.Random, ctx: Context) -> Case:
    bad = rng.choice(INVALID_UTF8)
    kind = rng.randrange(6)
    if kind <= 2:
        rtype = rng.choice(["Patient", "Observation"])
        method, target = _write_target(rng, ctx, rtype)
        valid = dumps(_fixture(rng, ctx, method, rtype))
        anchor = rng.choice([b'"Ph', b'"Heart', b'"final', b'"female', b'"resourceType', b'"http'])
        body = valid.replace(anchor, anchor[:1] + bad + anchor[1:], 1)
        if body == valid:
            body = valid[:-1] + b', "x": "' + bad + b'"}'
        return Case("invalid-utf8", f"body {bad.hex()}", method, target, body)
    if kind == 3:
        return Case("invalid-utf8", "utf-16 body", "POST", "/fhir/Patient", dumps(patient()).decode().encode(rng.choice(["utf-16", "utf-16-le", "utf-32"])))
    if kind == 4:
        enc = "".join(f"%{b:02X}" for b in bad)
        return Case("invalid-utf8", f"id {enc}", rng.choice(["GET", "DELETE"]), f"/fhir/Patient/x{enc}y", b"", ())
    enc = "".join(f"%{b:02X}" for b in bad)
    param = rng.choice(["_count", "birthdate", "_page", "_lastUpdated", "_summary", "_total"])
    return Case("invalid-utf8", f"query {param}", "GET", f"/fhir/Patient?{param}={enc}", b"", ())


@category("content-type")
def content_type(rng: random.Random, ctx: Context) -> Case:
    valid = dumps(patient())
    kind = rng.randrange(5)
    if kind <= 2:
        ctype = rng.choice([None, "text/plain", "application/xml", "application/fhir+xml", "text/xml", "multipart/form-data; boundary=x",
                            "application/x-www-form-urlencoded", "application/octet-stream", "garbage", "application/fhir+json; charset=latin-1",
                            "application/fhir+json; charset=utf-16", "application/json; charset=iso-8859-1", "text/html", "image/png", "*/*"])
        headers = () if ctype is None else (("Content-Type", ctype),)
        method, target = rng.choice([("POST", "/fhir/Patient"), ("PUT", f"/fhir/Patient/{ctx.patient_id}"), ("POST", "/fhir")])
        return Case("content-type", f"Content-Type {ctype}", method, target, valid, headers)
    if kind == 3:
        enc = rng.choice(["gzip", "deflate", "br", "compress", "x-custom"])
        return Case("content-type", f"Content-Encoding {enc}", "POST", "/fhir/Patient", gzip.compress(valid, mtime=0), (("Content-Type", FHIR_JSON), ("Content-Encoding", enc)))
    wrong = rng.choice([
        ("PATCH", f"/fhir/Patient/{ctx.patient_id}", FHIR_JSON, b'[{"op":"replace","path":"/active","value":false}]', None),
        ("POST", "/fhir/Patient/_search", FHIR_JSON, b'{"name":"x"}', None),
        ("GET", f"/fhir/Patient/{ctx.patient_id}", None, b"", "application/fhir+xml"),
        ("GET", "/fhir/Patient", None, b"", "application/xml"),
        ("GET", f"/fhir/Patient/{ctx.patient_id}?_format=xml", None, b"", None),
        ("GET", "/fhir/metadata?_format=text/turtle", None, b"", None),
        ("GET", f"/fhir/Patient/{ctx.patient_id}", None, b"", "text/html"),
    ])
    method, target, ctype, body, accept = wrong
    headers = tuple(h for h in (("Content-Type", ctype) if ctype else None, ("Accept", accept) if accept else None) if h)
    return Case("content-type", f"{method} {target.split('/')[2][:20]} {ctype or accept}", method, target, body, headers)


@category("oversized")
def oversized(rng: random.Random, ctx: Context) -> Case:
    size = ctx.body_limit + rng.choice([1, 1000, ctx.body_limit, 7 * ctx.body_limit])
    head = dumps(patient())[:-1] + b', "text": {"status": "generated", "div": "<div xmlns=\\"http://www.w3.org/1999/xhtml\\">'
    tail = b'</div>"}}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    method, target = rng.choice([("POST", "/fhir/Patient"), ("PUT", f"/fhir/Patient/{ctx.patient_id}"), ("POST", "/fhir"),
                                 ("PATCH", f"/fhir/Patient/{ctx.patient_id}"), ("POST", "/fhir/Patient/$validate")])
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json-patch+json" if method == "PATCH" else FHIR_JSON),)
    chunked = rng.random() < 0.25
    return Case("oversized", f"{len(body)} bytes{' chunked' if chunked else ''}", method, target, body, headers, chunked=chunked)


BAD_IDS = ["..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252f", "%00", "abc%00def", "a" * 65,
           "%20", "id%20with%20space", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "%C3%A9", "%EF%BC%8E%EF%BC%8E", "%C0%AE%C0%AE", "..%3B",
           "id%3Brm%20-rf", "~", "%24", "*", "%27%20OR%201%3D1--", "%FF%FE", "%5C..%5C..%5Cwindows", "%E2%80%AE", "a_b", "a:b",
           "%0d%0aSet-Cookie:%20x=1", "%7B%7D"]
BAD_TYPES = ["patient", "PATIENT", "Foo", "..", "%2e%2e", "Patient%00", "Patient.", "OperationOutcome", "Resource", "DomainResource", "Bundle%2F..",
             "_history", "metadataX", "%3Cscript%3E", "Binary"]
RAW_TRAVERSAL = ["/fhir/Patient/../../../etc/passwd", "/fhir/../../etc/passwd", "/fhir/Patient/./x/../..", "/fhir/Patient/..%2f..%2f..%2fetc/passwd",
                 "/fhir/Patient/%2e%2e/%2e%2e/etc/passwd", "/fhir/..;/..;/etc/passwd", "/fhir/Patient/x/_history/../../../..", "/fhir/%2e%2e/%2e%2e/",
                 "/fhir/$export-file/..%2f..%2f/master.key", "/fhir/$export-file/../../master.key", "/fhir/$export-status/..%2f..%2fmaster.key"]


@category("bad-ids")
def bad_ids(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(8)
    bad = rng.choice(BAD_IDS)
    if kind == 0:
        return Case("bad-ids", f"read {bad[:30]}", "GET", f"/fhir/Patient/{bad}", b"", ())
    if kind == 1:
        doc = patient() | {"id": bad}
        return Case("bad-ids", f"update {bad[:30]}", "PUT", f"/fhir/Patient/{bad}", dumps(doc))
    if kind == 2:
        return Case("bad-ids", f"delete {bad[:30]}", "DELETE", f"/fhir/Patient/{bad}", b"", ())
    if kind == 3:
        suffix = rng.choice(["/_history", "/$everything", "/_history/1", "/$validate"])
        method = "POST" if suffix == "/$validate" else "GET"
        body = dumps(patient()) if method == "POST" else b""
        return Case("bad-ids", f"{suffix} {bad[:30]}", method, f"/fhir/Patient/{bad}{suffix}", body, (("Content-Type", FHIR_JSON),) if body else ())
    if kind == 4:
        rtype = rng.choice(BAD_TYPES)
        return Case("bad-ids", f"type {rtype}", rng.choice(["GET", "DELETE"]), f"/fhir/{rtype}/{ctx.patient_id}", b"", ())
    if kind == 5:
        return Case("bad-ids", "raw traversal", rng.choice(["GET", "DELETE"]), rng.choice(RAW_TRAVERSAL), b"", ())
    if kind == 6:
        target = rng.choice([f"/fhir/$export-status/{bad}", f"/fhir/$export-file/{bad}/Patient.ndjson", f"/fhir/$export-file/x/{bad}.ndjson",
                             f"/fhir/AuditEvent/{bad}", f"/fhir/Group/{bad}/$export"])
        headers: tuple[tuple[str, str], ...] = (("Prefer", "respond-async"),) if target.endswith("$export") else ()
        return Case("bad-ids", f"ops {target[:40]}", "GET", target, b"", headers)
    doc = observation(rng.choice(["Patient/../../etc/passwd", "Patient/%2e%2e", "../Patient/x", "Patient/" + "a" * 65, "Patient/a b", "Patient/<x>",
                                  "Patient/" + ctx.patient_id + "/_history/../..", "Patient/"]))
    return Case("bad-ids", f"reference {doc['subject']['reference'][:30]}", "POST", "/fhir/Observation", dumps(doc))


def _xxe(rng: random.Random, ctx: Context) -> bytes:
    return rng.choice([
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><text value="&xxe;"/></name></Patient>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><name><text value="&lol4;"/></name></Patient>',
        b'<?xml version="1.0"?><!DOCTYPE p SYSTEM "' + ctx.dtd_url.encode() + b'"><Patient xmlns="http://hl7.org/fhir"/>',
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % ext SYSTEM "' + ctx.dtd_url.encode() + b'"> %ext;]><Patient xmlns="http://hl7.org/fhir"/>',
        b'<?xml version="1.0"?><Patient xmlns="http://hl7.org/fhir" xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></Patient>',
    ])


@category("xml-entities")
def xml_entities(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(3)
    if kind <= 1:
        ctype = rng.choice(["application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"])
        method, target = rng.choice([("POST", "/fhir/Patient"), ("PUT", f"/fhir/Patient/{ctx.patient_id}"), ("POST", "/fhir"), ("POST", "/fhir/Patient/$validate")])
        return Case("xml-entities", f"XML body as {ctype}", method, target, _xxe(rng, ctx), (("Content-Type", ctype),))
    div = rng.choice([
        '<!DOCTYPE div [<!ENTITY x "y">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>',
        '<!DOCTYPE div [<!ENTITY x SYSTEM "file:///etc/passwd">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>',
        f'<!DOCTYPE div SYSTEM "{ctx.dtd_url}"><div xmlns="http://www.w3.org/1999/xhtml">x</div>',
        '<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;&undefined;</div>',
        '<div xmlns="http://www.w3.org/1999/xhtml">&xxe;</div>',
        '<!DOCTYPE div PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://127.0.0.1:9/x.dtd"><div xmlns="http://www.w3.org/1999/xhtml">x</div>',
    ])
    return Case("xml-entities", "entity in narrative", "POST", "/fhir/Patient", dumps(patient() | {"text": {"status": "generated", "div": div}}))


SCRIPTS = [
    "<script>alert(1)</script>", '<img src="x" onerror="alert(1)"/>', '<a href="javascript:alert(1)">x</a>', '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>', '<a href="&#106;avascript:alert(1)">x</a>', '<iframe src="http://127.0.0.1:9/"></iframe>',
    '<object data="x"></object>', '<embed src="x"/>', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', '<p style="background:url(javascript:alert(1))">x</p>',
    '<form action="http://127.0.0.1:9/"><input name="x"/></form>', '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/"/>', '<base href="http://127.0.0.1:9/"/>',
    '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"/>', "<style>body{background:red}</style>", '<p onclick="x()">hi</p>', '<p onmouseover="x()">hi</p>',
    '<applet code="x"></applet>', '<math xmlns="http://www.w3.org/1998/Math/MathML"><maction actiontype="statusline" xlink:href="javascript:alert(1)"/></math>',
    '<a xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="javascript:alert(1)">x</a>', '<p>unclosed', "<b><i>misnested</b></i>",
    '<frameset><frame src="x"/></frameset>', '<body onload="alert(1)"></body>', '<script src="http://127.0.0.1:9/x.js"/>',
]


@category("script-narrative")
def script_narrative(rng: random.Random, ctx: Context) -> Case:
    payload = rng.choice(SCRIPTS)
    wrap = rng.random() < 0.85
    div = f'<div xmlns="http://www.w3.org/1999/xhtml">{payload}</div>' if wrap else rng.choice([f"<div>{payload}</div>", payload, "<div>plain but no namespace</div>"])
    rtype = rng.choice(["Patient", "Observation"])
    method, target = _write_target(rng, ctx, rtype)
    doc = _fixture(rng, ctx, method, rtype) | {"text": {"status": "generated", "div": div}}
    if rng.random() < 0.15:
        doc = patient() | {"contained": [{"resourceType": "Practitioner", "id": "p1", "text": {"status": "generated", "div": div}}],
                           "generalPractitioner": [{"reference": "#p1"}]}
        method, target = "POST", "/fhir/Patient"
    return Case("script-narrative", payload[:40], method, target, dumps(doc))


BAD_SEARCH = [
    ("Patient", "_count=-1"), ("Patient", "_count=abc"), ("Patient", "_count=1.5"), ("Patient", "_count="), ("Patient", "_sort=unknownparam"),
    ("Patient", "_sort=name"), ("Patient", "_sort=-"), ("Patient", "birthdate=notadate"), ("Patient", "birthdate=xx2020"), ("Patient", "birthdate=2020-13"),
    ("Patient", "birthdate=2020-02-30"), ("Patient", "birthdate=ap"), ("Patient", "_lastUpdated=garbage"), ("Patient", "_lastUpdated=gt2020-13-45"),
    ("Patient", "identifier:bogus=x"), ("Patient", "gender:above=male"), ("Patient", "name:contains=ab"), ("Patient", "_include=Patient"),
    ("Patient", "_include=a:b:c:d"), ("Patient", "_include:bogus=Patient:organization"), ("Patient", "_revinclude=x"), ("Patient", "_summary=bogus"),
    ("Patient", "_total=bogus"), ("Patient", "_has:Observation"), ("Patient", "_has:Observation:patient"), ("Patient", "_has:Observation:patient:code="),
    ("Patient", "gender="), ("Patient", "identifier="), ("Patient", "general-practitioner.name.given.family.x=1"), ("Patient", "general-practitioner."),
    ("Patient", ".name=x"), ("Patient", ":exact=x"), ("Patient", "_id="), ("Patient", "_format=xml"), ("Patient", "_format=application/fhir%2Bxml"),
    ("Observation", "value-quantity=abc"), ("Observation", "value-quantity=gt"), ("Observation", "date=ap"), ("Observation", "date=2026-01-01T25:00"),
    ("Observation", "date=2026-01-01T10:00:00+25:00"), ("Observation", "date=zz2026"), ("Observation", "subject:Foo=1"), ("Observation", "code:below=x"),
    ("Observation", "_sort=value-quantity,unknown"), ("Observation", "combo-code:missing=maybe"), ("Observation", "patient:missing=yes"),
    ("Patient", "birthdate=lt2020%00"), ("Observation", "date=le%20"), ("Patient", "_count=%00"),
]


@category("bad-search")
def bad_search(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(10)
    if kind == 0:
        unknown = rng.choice(["unknownparam=1", "foo=bar", "name:bogus=x", "_unknown=1", "Patient=1"])
        return Case("bad-search", f"strict {unknown}", "GET", f"/fhir/Patient?{unknown}", b"", (("Prefer", "handling=strict"),))
    rtype, query = rng.choice(BAD_SEARCH)
    if kind == 1 and "_format" not in query:  # (_format in a POST body is not content negotiation)
        return Case("bad-search", f"POST _search {query}", "POST", f"/fhir/{rtype}/_search", query.encode(), (("Content-Type", "application/x-www-form-urlencoded"),))
    if kind == 2:
        return Case("bad-search", f"conditional delete {query}", "DELETE", f"/fhir/{rtype}?{query}", b"", ())
    if kind == 3 and rtype == "Patient":
        return Case("bad-search", f"conditional update {query}", "PUT", f"/fhir/Patient?{query}", dumps(patient()))
    if kind == 4 and rtype == "Patient":
        return Case("bad-search", f"If-None-Exist {query}", "POST", "/fhir/Patient", dumps(patient()), (("Content-Type", FHIR_JSON), ("If-None-Exist", query)))
    return Case("bad-search", query, "GET", f"/fhir/{rtype}?{query}", b"", ())


@category("bad-page-tokens")
def bad_page_tokens(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(6)
    if kind == 0:
        token = base64.urlsafe_b64encode(bytes(rng.randrange(256) for _ in range(rng.choice([8, 64, 120, 400])))).decode()
    elif kind == 1:
        token = ctx.search_token[: rng.randrange(4, len(ctx.search_token) - 1)]
    elif kind == 2:
        pos = rng.randrange(len(ctx.search_token))
        flipped = "A" if ctx.search_token[pos] != "A" else "B"
        token = ctx.search_token[:pos] + flipped + ctx.search_token[pos + 1:]
    elif kind == 3:
        token = rng.choice(["%00", "x", "..%2f..%2f", "%FF", "null", "-1", "1", "A" * 3000, "gAAAAA", "{}", "%7B%22offset%22%3A0%7D"])
    elif kind == 4:
        token = ctx.history_token  # a history token used for a search
    else:
        token = _q(_q(ctx.search_token))  # double percent-encoded
    target = rng.choice([f"/fhir/Patient?_page={token}", f"/fhir/Observation?_page={token}", f"/fhir/Patient/_history?_page={token}",
                         f"/fhir/_history?_page={token}", f"/fhir/Patient/{ctx.patient_id}/_history?_page={token}",
                         f"/fhir/Patient/{ctx.patient_id}/$everything?_page={token}", f"/fhir/AuditEvent?_page={token}", f"/fhir/Patient/$everything?_page={token}"])
    if kind == 4 and "_history" in target:
        target = f"/fhir/Patient?_page={token}"
    return Case("bad-page-tokens", f"kind {kind}", "GET", target, b"", ())


@category("bad-methods")
def bad_methods(rng: random.Random, ctx: Context) -> Case:
    method, target = rng.choice([
        ("DELETE", "/fhir/metadata"), ("PUT", "/fhir/metadata"), ("PATCH", "/fhir/metadata"), ("PUT", "/fhir"), ("DELETE", "/fhir"), ("GET", "/fhir"),
        ("PATCH", "/fhir/Patient"), ("POST", f"/fhir/Patient/{ctx.patient_id}"), ("TRACE", "/fhir/Patient"), ("PROPFIND", "/fhir/Patient"),
        ("FOO", "/fhir/Patient"), ("POST", f"/fhir/Patient/{ctx.patient_id}/_history"), ("DELETE", f"/fhir/Patient/{ctx.patient_id}/_history/1"),
        ("PUT", "/fhir/Patient/_history"), ("POST", "/fhir/_history"), ("DELETE", "/fhir/$export"), ("POST", "/fhir/$export"), ("PUT", "/fhir/AuditEvent/x"),
        ("POST", "/fhir/AuditEvent"), ("DELETE", "/fhir/AuditEvent"), ("POST", "/fhir/.well-known/smart-configuration"), ("GET", "/fhir/Patient/$match"),
        ("GET", "/fhir/Patient/$merge"), ("TRACK", "/fhir/Patient"), ("MKCOL", "/fhir/Patient"),
    ])
    body = dumps(patient()) if method in ("POST", "PUT", "PATCH") else b""
    return Case("bad-methods", f"{method} {target[:40]}", method, target, body, (("Content-Type", FHIR_JSON),) if body else ())


@category("bad-bundles")
def bad_bundles(rng: random.Random, ctx: Context) -> Case:
    good = {"fullUrl": "urn:uuid:4f8e7a34-6b1c-4f5e-8d2a-1c3b5e7f9a0b", "resource": patient(), "request": {"method": "POST", "url": "Patient"}}
    obs = {"fullUrl": "urn:uuid:0b9a7f5e-3c1b-4a2d-8e5f-6c4b1a3e7f8d", "resource": observation("urn:uuid:4f8e7a34-6b1c-4f5e-8d2a-1c3b5e7f9a0b"),
           "request": {"method": "POST", "url": "Observation"}}
    kind = rng.randrange(16)
    if kind == 0:
        bundle: Any = {"resourceType": "Bundle", "type": rng.choice(["collection", "searchset", "document", "message", "history", "", 5, None, "TRANSACTION"]), "entry": [good]}
    elif kind == 1:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": rng.choice(["x", 5, [5], [None], [[]]])}
    elif kind == 2:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, {"resource": patient()}]}
    elif kind == 3:
        bad = dict(good, request={"method": rng.choice(["FOO", "", 5, None, "G ET"]), "url": "Patient"})
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [bad]}
    elif kind == 4:
        bad = dict(good, request={"method": "POST", "url": rng.choice(["../../etc/passwd", "", "Foo", "Observation", "Patient/123/456", "http://evil.example/Patient", 5])})
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [bad]}
    elif kind == 5:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, dict(good)]}  # duplicate fullUrl
    elif kind == 6:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, {"fullUrl": "urn:uuid:5e1f0c2a-9b8d-4c7e-a6f5-3d2c1b0a9e8f", "request": {"method": "POST", "url": "Patient"}}]}
    elif kind == 7:
        dangling = dict(obs, resource=observation("urn:uuid:99999999-9999-4999-8999-999999999999"))
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, dangling]}
    elif kind == 8:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, dict(obs, resource=observation("urn:uuid:4f8e7a34-6b1c-4f5e-8d2a-1c3b5e7f9a0b") | {"status": 5})]}
    elif kind == 9:
        inner = {"resourceType": "Bundle", "type": "transaction", "entry": [good]}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": inner, "request": {"method": "POST", "url": "Bundle"}}, dict(obs, resource={"resourceType": "Observation"})]}
    elif kind == 10:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient(), "request": {"method": "PUT", "url": "Patient"}}]}
    elif kind == 11:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [dict(good, request={"method": "POST", "url": "Patient", "ifNoneExist": rng.choice(["birthdate=bad", "_count=x", "%%%", "x:bogus=1"])})]}
    elif kind == 12:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good] + [dict(obs, fullUrl=f"urn:uuid:00000000-0000-4000-8000-{i:012d}", resource={"resourceType": "Observation", "status": 5}) for i in range(rng.choice([50, 500]))]}
    elif kind == 13:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, {"request": {"method": "GET", "url": rng.choice(["Foo/1", "../x"])}}]}
    elif kind == 14:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient() | {"id": "x1"}, "request": {"method": "PUT", "url": f"Patient/{rng.choice(['x2', '..', 'a b'])}"}}]}
    else:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [good, {"request": {"method": "DELETE", "url": rng.choice(["Patient", "Patient/", "Patient?birthdate=bad", "Foo/1"])}}]}
    return Case("bad-bundles", f"kind {kind}", "POST", "/fhir", dumps(bundle))


@category("bad-patch")
def bad_patch(rng: random.Random, ctx: Context) -> Case:
    body = rng.choice([
        b"{}", b'{"op":"replace"}', b"[1]", b'[{"op":"bogus","path":"/active"}]', b'[{"op":"replace"}]', b'[{"op":"replace","path":"/resourceType","value":"Encounter"}]',
        b'[{"op":"replace","path":"/id","value":"other"}]', b'[{"op":"test","path":"/active","value":false},{"op":"replace","path":"/active","value":true}]',
        b'[{"op":"remove","path":"/nonexistent/deep"}]', b'[{"op":"add","path":"/gender","value":5}]', b'[{"op":"add","path":"/birthDate","value":"notadate"}]',
        b'[{"op":"replace","path":"../x","value":1}]', b'[{"op":"move","from":"/name","path":"/name/0"}]', b'[{"op":"add","path":"/unknownElement","value":1}]',
        b'[{"op":"add","path":"/text","value":{"status":"generated","div":"<div xmlns=\\"http://www.w3.org/1999/xhtml\\"><script>x</script></div>"}}]',
        b'[{"op":"copy","from":"/nothing","path":"/x"}]', b'[{"op":"replace","path":"/name/99/family","value":"x"}]', b"[", b"",
        b'[{"op":"add","path":"/extension/-","value":{"url":5}}]',
    ])
    target = rng.choice([f"/fhir/Patient/{ctx.patient_id}", f"/fhir/Observation/{ctx.observation_id}", "/fhir/Patient/does-not-exist"])
    return Case("bad-patch", body[:40].decode(errors="replace"), "PATCH", target, body, (("Content-Type", "application/json-patch+json"),))


@category("bad-headers")
def bad_headers(rng: random.Random, ctx: Context) -> Case:
    kind = rng.randrange(4)
    if kind == 0:
        value = rng.choice(["garbage", "W/1", '"abc"', 'W/"x"', "*", 'W/"1", W/"2"', "W/", '""'])
        return Case("bad-headers", f"If-Match {value}", "PUT", f"/fhir/Patient/{ctx.patient_id}", dumps(patient() | {"id": ctx.patient_id}),
                    (("Content-Type", FHIR_JSON), ("If-Match", value)))
    if kind == 1:
        value = rng.choice(['W/"999999"', 'W/"0"'])
        method, body = rng.choice([("PUT", dumps(patient() | {"id": ctx.patient_id})), ("DELETE", b""), ("PATCH", b'[{"op":"replace","path":"/active","value":true}]')])
        ctype = "application/json-patch+json" if method == "PATCH" else FHIR_JSON
        return Case("bad-headers", f"stale If-Match on {method}", method, f"/fhir/Patient/{ctx.patient_id}", body,
                    (("Content-Type", ctype), ("If-Match", value)) if body else (("If-Match", value),))
    if kind == 2:
        return Case("bad-headers", "PUT on a type without a query", "PUT", "/fhir/Patient", dumps(patient()))
    return Case("bad-headers", "DELETE on a type without a query", "DELETE", "/fhir/Patient", b"", ())


@category("bad-operations")
def bad_operations(rng: random.Random, ctx: Context) -> Case:
    pid = ctx.patient_id
    choice = rng.choice([
        ("GET", f"/fhir/Patient/{pid}/$everything?_count=abc", b"", ()),
        ("GET", f"/fhir/Patient/{pid}/$everything?_since=garbage", b"", ()),
        ("GET", "/fhir/Patient/does-not-exist/$everything", b"", ()),
        ("POST", f"/fhir/Patient/{pid}/$everything", b'{"resourceType":"Parameters","parameter":[{"name":"_count","valueString":"abc"}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", f"/fhir/Patient/{pid}/$everything", b'{"resourceType":"Patient"}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$match", b'{"resourceType":"Parameters","parameter":[]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$match", b'{"resourceType":"Parameters","parameter":[{"name":"resource","valueString":"x"}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$match", b'{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient","gender":5}}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$match", b'{"resourceType":"Patient"}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$merge", b'{"resourceType":"Parameters","parameter":[{"name":"source-patient","valueReference":{"reference":"Patient/nope"}}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$merge", b'{"resourceType":"Parameters","parameter":[{"name":"source-patient","valueString":5}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$merge", b'{"resourceType":"Parameters","parameter":"x"}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$from-cccd-qr", rng.choice([b"garbage", b"", b"|||||||", b"0|1|2|3|4|5|6", "079188012345||Trần|99999999|X|Y|Z".encode()]), (("Content-Type", "text/plain"),)),
        ("POST", "/fhir/Patient/$from-cccd-qr", b'{"resourceType":"Parameters","parameter":[{"name":"payload","valueString":"x"}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$from-cccd-qr", b'{"resourceType":"Parameters","parameter":[{"name":"payload","valueInteger":5}]}', (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$validate?mode=bogus", dumps(patient()), (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Patient/$validate", dumps(observation("Patient/x")), (("Content-Type", FHIR_JSON),)),
        ("POST", "/fhir/Foo/$validate", dumps(patient()), (("Content-Type", FHIR_JSON),)),
        ("GET", "/fhir/$export", b"", ()),
        ("GET", "/fhir/$export?_type=Foo", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/$export?_outputFormat=application/fhir%2Bxml", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/$export?_since=notadate", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/$export?bogus=1", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/Patient/$export?_typeFilter=x", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/Group/does-not-exist/$export", b"", (("Prefer", "respond-async"),)),
        ("GET", "/fhir/$export-status/does-not-exist", b"", ()),
        ("DELETE", "/fhir/$export-status/does-not-exist", b"", ()),
        ("GET", "/fhir/$export-file/does-not-exist/Patient.ndjson", b"", ()),
        ("GET", "/fhir/$export-file/does-not-exist/Patient.json", b"", ()),
        ("GET", f"/fhir/Patient/{pid}/_history?_count=abc", b"", ()),
        ("GET", f"/fhir/Patient/{pid}/_history?_since=garbage", b"", ()),
        ("GET", "/fhir/_history?_since=2026-13-01", b"", ()),
        ("GET", "/fhir/AuditEvent?date=garbage", b"", ()),
        ("GET", "/fhir/AuditEvent?patient=", b"", ()),
        ("GET", "/fhir/AuditEvent/does-not-exist", b"", ()),
    ])
    method, target, body, headers = choice
    return Case("bad-operations", f"{method} {target[:50]}", method, target, body, headers)


def corpus(seed: int, n: int, ctx: Context) -> Iterator[Case]:
    rng = random.Random(seed)
    names = sorted(CATEGORIES)
    for i in range(n):
        yield CATEGORIES[names[i % len(names)]](rng, ctx)


# --- checks -----------------------------------------------------------------------------------

TRACE_MARKERS = [b"Traceback (most recent call last)", b'File "/', b"site-packages", b".py\", line", b"sqlalchemy", b"psycopg", b"sqlite3.",
                 b"/work/", b"werkzeug.exceptions", b"<!doctype html", b"<html"]


def problems(case: Case, result: Result, max_seconds: float) -> list[str]:
    out = []
    if result.error and result.status == 0:
        return [f"no answer ({result.error})"]
    if not 400 <= result.status < 500:
        out.append(f"status {result.status}")
    if result.seconds > max_seconds:
        out.append(f"took {result.seconds:.2f}s")
    low = result.body.lower()
    for marker in TRACE_MARKERS:
        if marker.lower() in low:
            out.append(f"body contains {marker!r}")
    ctype = result.headers.get("content-type", "")
    if not (ctype.startswith("application/fhir+json") or ctype.startswith("application/json")):
        out.append(f"content-type {ctype!r}")
    try:
        doc = json.loads(result.body)
        if not (isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome" and doc.get("issue")):
            out.append("body is not an OperationOutcome")
    except ValueError:
        out.append("body is not JSON")
    return out


@dataclass
class Tally:
    sent: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
