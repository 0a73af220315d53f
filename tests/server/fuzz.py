"""Seeded generators of hostile requests for the server fuzzer (tests/server/test_fuzz.py).

Each request starts from a valid one for its endpoint and is mutated the way careless clients
and attackers do: values of every JSON type in every field, text that is not text (lone
surrogates, invalid UTF-8), numbers that are not finite or not floats, deep nesting, unknown
and missing fields, broken JSON, other content types, odd paths and tokens.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from tests.server.conftest import TOKEN

DECISIONS = ("/agent-action", "/evaluate", "/v1/decide")
OPERATOR = ("/reset", "/v1/reset", "/v1/agents/{agent}/reset")
RELOAD = "/v1/policy/reload"
RELOAD_SHARE = 0.004
"""Reloads compile the policy again: a few of them are enough."""
ACTIONS = ["FILE_READ", "EXPORT_DATA", "APPROVE_TRANSACTION", "SEND_NOTIFICATION",
           "CHANGE_PERMISSION", "DELETE_RECORD", "MODIFY_RECORD", " export_data ", "", "X"]
CONTEXT_KEYS = ["approval_requires_verified_eligibility", "eligibility_verified",
                "required_documents_present", "max_approval_amount",
                "sensitive_record_update_requires_review", "claim_id", "acount_flag", ""]
TEXTS = ["", " ", "internal", "EXTERNAL ", "sensitive", "approval", "rejection", "ünïcode ✓",
         "\x00", "\u202e", "😀", "a" * 300, "9000", "1e3", "inf", "NaN", "-0", "true", "null",
         "{}", "[]", "\\", '"', "%ff", "\r\n"]
RAW_TEXTS = ['"\\ud800"', '"x\\udfff"', '"\\ud83d\\ude00"', '"\\u0000"', '"\\ud83d"']
NUMBERS = ["0", "-0", "20", "20.0", "1e308", "1e309", "-1e999", "1e-400", "NaN", "Infinity",
           "-Infinity", "9" * 400, "9" * 5000, "0.1", "5000", "4.9e-324", "1E2", "-5"]
CONTENT_TYPES = ["application/json"] * 12 + [
    "application/json; charset=utf-8", "application/vnd.x+json", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
    "application/json; charset=utf-16", "", "application/xml"]


@dataclass
class FuzzRequest:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    chunked: bool = False


def valid_body(path: str, chooser: random.Random) -> dict[str, Any]:
    agent = f"fuzz-{chooser.randrange(40)}"
    if path == "/agent-action":
        return {"agent_id": agent, "action_type": chooser.choice(ACTIONS),
                "target": "t", "amount": chooser.choice([None, 10, 9000, 12.5]),
                "notification_type": chooser.choice([None, "approval", "rejection"]),
                "data_classification": chooser.choice(["internal", "sensitive"]),
                "destination_type": chooser.choice(["internal", "external"]),
                "policy_context": {key: chooser.choice([True, False, 5000, "x"])
                                   for key in chooser.sample(CONTEXT_KEYS, 3)}}
    if path == "/evaluate":
        return {"claim": {"claim_id": agent, "documents": {"proof_of_termination": "p"},
                          "currently_employed_elsewhere": chooser.choice(["yes", "no", 1])},
                "proposed_tool_call": {"tool_name": chooser.choice(
                    ["approve_payment", "send_notification", "export_data", "x"]),
                    "arguments": {"amount": chooser.choice([1, "7000", None]),
                                  "to": "a@b.c", "body": "approved"}}}
    if path == "/v1/decide":
        return {"agent_id": agent, "action": chooser.choice(ACTIONS),
                "fields": {"amount": 10, "context": {"max_approval_amount": 5000}}}
    return {}


def random_value(chooser: random.Random, depth: int = 0) -> str:
    """A JSON value as text (so it can hold what ``json.dumps`` cannot write)."""
    kind = chooser.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return chooser.choice(["null", "true", "false"])
    if kind in (1, 2):
        return chooser.choice(NUMBERS)
    if kind in (3, 4):
        return json.dumps(chooser.choice(TEXTS))
    if kind in (5, 6):
        return chooser.choice(RAW_TEXTS)
    if kind == 7:
        return "[" + ",".join(random_value(chooser, depth + 1)
                              for _ in range(chooser.randrange(4))) + "]"
    if kind == 8:
        return random_object(chooser, depth + 1)
    depth_of = chooser.choice([50, 500, 2000])
    return "[" * depth_of + "]" * depth_of


def random_object(chooser: random.Random, depth: int) -> str:
    keys = [json.dumps(chooser.choice(TEXTS + CONTEXT_KEYS)) if chooser.random() < 0.8
            else chooser.choice(RAW_TEXTS) for _ in range(chooser.randrange(4))]
    return "{" + ",".join(f"{key}:{random_value(chooser, depth)}" for key in keys) + "}"


def mutated(body: dict[str, Any], chooser: random.Random) -> bytes:
    """The body as JSON text with some of its values (at any depth) replaced."""
    text_parts: dict[str, str] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                if chooser.random() < 0.08:
                    continue   # a missing field
                result[key] = walk(item, f"{path}.{key}")
            if chooser.random() < 0.15:
                result[chooser.choice(TEXTS + CONTEXT_KEYS)] = walk(None, path + ".extra")
            return result
        if chooser.random() < 0.3:
            marker = f"@@{len(text_parts)}@@"
            text_parts[marker] = random_value(chooser)
            return marker
        return value

    text = json.dumps(walk(body, ""), ensure_ascii=False)
    for marker, raw in text_parts.items():
        text = text.replace(json.dumps(marker), raw)
    data = text.encode("utf-8")
    damage = chooser.random()
    if damage < 0.03:
        data = data[:chooser.randrange(len(data) + 1)]
    elif damage < 0.06:
        at = chooser.randrange(len(data) + 1)
        data = data[:at] + bytes([chooser.choice([0xFF, 0xC3, 0xED, 0x80, 0x00])]) + data[at:]
    elif damage < 0.08:
        data = chooser.choice([b"", b"null", b"[]", b"5", b'"x"', b"{", b"\xef\xbb\xbf{}"])
    elif damage < 0.09:
        data = data.replace(b'"agent_id"', b'"agent_id":"dup","agent_id"', 1)
    return data


def fuzz_request(chooser: random.Random, paths: tuple[str, ...]) -> FuzzRequest:
    path = RELOAD if chooser.random() < RELOAD_SHARE else chooser.choice(paths)
    headers = {"Content-Type": chooser.choice(CONTENT_TYPES)}
    if not headers["Content-Type"]:
        del headers["Content-Type"]
    if path in OPERATOR or path == RELOAD or chooser.random() < 0.05:
        headers["Authorization"] = chooser.choice([f"Bearer {TOKEN}", f"Bearer {TOKEN}",
                                                   "Bearer wrong", "Basic x", "Bearer ",
                                                   f"bearer {TOKEN} "])
    if "{agent}" in path:
        path = path.replace("{agent}", chooser.choice(
            ["a", "fuzz-1", "%ED%A0%80", "%FF", "a%2Fb", "%00", "x" * 200, "ü", "%20"]))
    if chooser.random() < 0.05:
        path += chooser.choice(["?x=1", "?%FF=1", "?a=%ED%A0%80", "?" + "a" * 300])
    body = mutated(valid_body(path, chooser), chooser) if path in DECISIONS else (
        b"" if chooser.random() < 0.7 else mutated({"note": "x"}, chooser))
    return FuzzRequest("POST", path, body, headers, chunked=chooser.random() < 0.1)


def encode(request: FuzzRequest, port: int) -> bytes:
    """The request's bytes on the wire (non-ASCII header values as UTF-8)."""
    headers = {"Host": f"127.0.0.1:{port}", **request.headers}
    if request.chunked:
        headers["Transfer-Encoding"] = "chunked"
        body = (f"{len(request.body):x}\r\n".encode() + request.body + b"\r\n0\r\n\r\n"
                if request.body else b"0\r\n\r\n")
    else:
        headers["Content-Length"] = str(len(request.body))
        body = request.body
    head = f"{request.method} {request.path} HTTP/1.1\r\n" + \
        "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode("utf-8") + body
