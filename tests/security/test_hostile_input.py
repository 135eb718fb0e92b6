"""Hostile input against a real `ledger serve` on loopback (threat model A), SQLite and
PostgreSQL: schemathesis in stateful mode over the whole API, then hand-made attacks sent
as raw bytes on a socket — oversize bodies (declared, and chunked without a length),
deeply nested JSON, invalid UTF-8, huge numbers, lone surrogates, path tricks, header
injection, huge headers — and slow clients.

Every attack must be answered with a 4xx (problem+json on the API; an HTML page on the
website; or the connection closed by the HTTP layer), never a 5xx or a hang, and must leave
the log exactly as long as it was.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ledger.actors import Actor
from ledger.application import LedgerApplication
from tests.conftest import BACKENDS, make_store
from tests.helpers import Sample, record_sample
from tests.security.test_access_control import Served

SETUP = Actor("setup", "admin", "")
PROBLEM = "application/problem+json"
IO_TIMEOUT = 15.0  # seconds for any one answer: slower is a hang


@dataclass
class Target:
    server: Served
    sample: Sample
    token: str

    @property
    def auth(self) -> str:
        return f"Authorization: Bearer {self.token}\r\n"


@pytest.fixture(params=BACKENDS, scope="module")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    tmp_path: Path = tmp_path_factory.mktemp(f"hostile-{request.param}")
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        try:
            sample = record_sample(app, amendments=1)
            _, token = app.issue_token(principal="hostile", org="", role="admin", actor=SETUP)
        finally:
            app.close()
        server = Served(store, tmp_path / "logs")
        try:
            yield Target(server, sample, token)
            assert server.proc.poll() is None, f"the server died:\n{server.output()[-3000:]}"
            log = server.output()
            assert "Traceback" not in log, log[-5000:]
        finally:
            server.stop()


# raw HTTP ------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: the server closed the connection without answering
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(server: Served, timeout: float = IO_TIMEOUT) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_answer(sock: socket.socket) -> Answer:
    """Read one HTTP/1.1 response (Content-Length or close-delimited)."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if not data:
                return Answer(None, {}, b"")
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        body += chunk
    return Answer(status, headers, body[:length] if length >= 0 else body)


def send_raw(server: Served, data: bytes, *, then: Iterator[bytes] | None = None) -> Answer:
    """Send ``data`` (and the chunks of ``then``, stopping early if the server answers or
    closes) on a fresh connection; return the answer."""
    started = time.monotonic()
    with connect(server) as sock:
        try:
            sock.sendall(data)
            for chunk in then or ():
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer (if any) is waiting
        answer = read_answer(sock)
    assert time.monotonic() - started < IO_TIMEOUT * 2, "the server took too long"
    return answer


def request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: str = "",
    content_type: str | None = "application/json",
    length: bool = True,
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if length and (body or method in ("POST", "PUT")):
        head += f"Content-Length: {len(body)}\r\n"
    return (head + headers + "\r\n").encode("latin-1") + body


def assert_refused(answer: Answer, what: str, *, allow_close: bool = False) -> None:
    """A 4xx problem (problem+json on the API, HTML on the website), or — where the HTTP
    layer itself refuses — a plain 400/413/431 or a closed connection."""
    if answer.status is None:
        assert allow_close, f"{what}: the connection was closed without an answer"
        return
    assert 400 <= answer.status < 500, (what, answer.status, answer.body[:500])
    content_type = answer.headers.get("content-type", "")
    if content_type.startswith(PROBLEM):
        problem = answer.json()
        assert problem["status"] == answer.status, (what, problem)
        assert problem.get("title"), (what, problem)
    elif content_type.startswith("text/html"):
        assert b"Traceback" not in answer.body, what
    else:
        # uvicorn/h11 refuse malformed HTTP before the app sees it (plain text, or nothing).
        assert allow_close, (what, answer.status, content_type, answer.body[:300])


# 1. schemathesis, stateful ---------------------------------------------------------------------


def test_stateful_schemathesis_finds_no_server_error(target: Target) -> None:
    """Sequences of operations linked by the schema (created ids fed to later calls), with
    an admin token: no 5xx, no response slower than the timeout."""
    server = target.server
    schema = schemathesis.openapi.from_url(server.base + "/openapi.json")
    checks = [schemathesis.checks.not_a_server_error]
    auth = {"Authorization": f"Bearer {target.token}"}

    calls: list[tuple[str, int]] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: Any) -> None:
            calls.append(
                (f"{case.operation.method.upper()} {case.operation.path}", response.status_code)
            )

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.base, "headers": auth, "timeout": IO_TIMEOUT}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=checks)

    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    operations = {name for name, _ in calls}
    assert len(calls) >= 20, calls
    assert len(operations) >= 5, operations
    print(f"{len(calls)} calls over {len(operations)} operations", sorted(operations))


# 2. bodies ------------------------------------------------------------------------------------


def test_oversize_bodies_are_refused(target: Target) -> None:
    server = target.server
    before = server.size()
    limit = 1_048_576
    # declared too large (nothing sent after the headers)
    answer = send_raw(
        server,
        request(
            "POST",
            "/processes",
            headers=target.auth + f"Content-Length: {limit + 1}\r\n",
            length=False,
        ),
    )
    assert answer.status == 413, answer
    assert_refused(answer, "declared oversize")
    # declared honestly, and sent
    body = b'{"title": "' + b"x" * (limit + 10) + b'", "summary": "s"}'
    assert_refused(
        send_raw(server, request("POST", "/processes", body, headers=target.auth)),
        "oversize",
        allow_close=True,
    )
    # chunked, no Content-Length, past the limit
    head = request(
        "POST", "/processes", headers=target.auth + "Transfer-Encoding: chunked\r\n", length=False
    )

    def chunked() -> Iterator[bytes]:
        first = b'{"title": "'
        yield f"{len(first):x}\r\n".encode() + first + b"\r\n"
        piece = b"x" * 65536
        for _ in range(limit // len(piece) + 4):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b'3\r\n"}\n\r\n0\r\n\r\n'

    answer = send_raw(server, head, then=chunked())
    assert_refused(answer, "chunked oversize", allow_close=True)
    if answer.status is not None:
        assert answer.status == 413, answer
    # a document upload past its own limit, declared
    answer = send_raw(
        server,
        request(
            "POST",
            "/documents",
            headers=target.auth + "Content-Length: 999999999999\r\n",
            content_type="application/pdf",
            length=False,
        ),
    )
    assert answer.status == 413, answer
    # a workspace form past the form limit, declared
    answer = send_raw(
        server,
        request(
            "POST",
            "/workspace/sign-in",
            headers=f"Content-Length: {limit + 1}\r\n",
            content_type="application/x-www-form-urlencoded",
            length=False,
        ),
    )
    assert answer.status == 413, answer
    # a Content-Length that is not a number
    answer = send_raw(
        server,
        request(
            "POST", "/processes", headers=target.auth + "Content-Length: 12abc\r\n", length=False
        ),
    )
    assert_refused(answer, "bad Content-Length", allow_close=True)
    assert server.size() == before


NESTED = {
    "arrays 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "objects 100k deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "arrays 100k deep, unclosed": b"[" * 100_000,
    "arrays 1000 deep inside a field": b'{"title": "t", "summary": "s", "x": '
    + b"[" * 1000
    + b"]" * 1000
    + b"}",
}

ODD_JSON = {
    "invalid UTF-8": b'{"title": "\xff\xfe\xc3\x28", "summary": "s"}',
    "overlong UTF-8 slash": b'{"title": "\xc0\xaf", "summary": "s"}',
    "UTF-8 encoded surrogate": b'{"title": "\xed\xa0\x80", "summary": "s"}',
    "escaped lone high surrogate": b'{"title": "\\ud800", "summary": "s"}',
    "escaped lone low surrogate": b'{"title": "a\\udc00b", "summary": "s"}',
    "NUL in a string": b'{"title": "a\\u0000b", "summary": "s"}',
    "huge integer": b'{"title": "t", "summary": "s", "n": ' + b"9" * 5000 + b"}",
    "huge integer where an int belongs": b'{"corrects_index": '
    + b"9" * 5000
    + b', "reason": "r", "correction": {}}',
    "2^64 where an int belongs": b'{"corrects_index": 18446744073709551616, '
    b'"reason": "r", "correction": {}}',
    "huge float": b'{"corrects_index": 1e999, "reason": "r", "correction": {}}',
    "NaN": b'{"corrects_index": NaN, "reason": "r", "correction": {}}',
    "-Infinity": b'{"title": -Infinity, "summary": "s"}',
    "duplicate keys": b'{"title": "a", "title": "b", "summary": "s"}',
    "BOM": b'\xef\xbb\xbf{"title": "t", "summary": "s"}',
    "not an object": b'"just a string"',
    "empty": b"",
    "truncated": b'{"title": "t", "summ',
    "trailing garbage": b'{"title": "t", "summary": "s"} {}',
    "UTF-16": '{"title": "t", "summary": "s"}'.encode("utf-16"),
    "a million keys' worth": b"{" + b",".join(b'"k%d": 1' % i for i in range(90_000)) + b"}",
}


# Accepted, and recorded canonically: duplicate keys (last wins, as in every mainstream JSON
# parser), a leading UTF-8 BOM (RFC 8259 lets a parser ignore it) and UTF-16 with a BOM
# (Python's json detects it). Each maps to the value recorded.
TOLERATED = {
    "duplicate keys": '\\"title\\":\\"b\\"',
    "BOM": '\\"title\\":\\"t\\"',
    "UTF-16": '\\"title\\":\\"t\\"',
}


def test_hostile_json_is_refused(target: Target) -> None:
    server = target.server
    before = server.size()
    for path in ("/processes", "/corrections", "/tokens"):
        for what, body in {**NESTED, **ODD_JSON}.items():
            answer = send_raw(server, request("POST", path, body, headers=target.auth))
            if what in TOLERATED and answer.status == 201:
                # Harmless leniency of the JSON parser (see TOLERATED): the entry records
                # one canonical value, so no reader of the log can see another.
                assert TOLERATED[what] in answer.body.decode(), answer.body[:300]
                before += 1
                continue
            if answer.status is not None and answer.status < 300:
                # accepted only if it was a well-formed command after all
                raise AssertionError((path, what, answer.status, answer.body[:300]))
            assert_refused(answer, f"{path}: {what}")
            assert answer.headers["content-type"].startswith(PROBLEM), (path, what)
    # the same through the charset parameter, and without authentication
    for what, body in ODD_JSON.items():
        answer = send_raw(server, request("POST", "/processes", body, content_type=None))
        assert answer.status in (400, 401, 413, 415, 422), (what, answer)
        answer = send_raw(server, request("POST", "/processes", body))
        assert answer.status in (400, 401, 413, 415, 422), (what, answer)
    assert server.size() == before


# 3. paths ---------------------------------------------------------------------------------------

PATH_TRICKS = [
    "/proposals/../tokens",
    "/proposals/%2e%2e/tokens",
    "/proposals/%2e%2e%2ftokens",
    "/proposals/..%2f..%2f..%2fetc%2fpasswd",
    "/proposals/%252e%252e%252f",
    "/proposals/abc%00def",
    "/proposals/%00",
    "/proposals/%c0%ae%c0%ae%c0%af",
    "/proposals/%ff%fe",
    "/proposals/%ed%a0%80",
    "/proposals/" + "a" * 20_000,
    "/proposals/" + "%2e" * 3000,
    "/documents/..%2f..%2f..%2fetc%2fpasswd",
    "/documents/" + "0" * 63 + "%00",
    "/publications/%2e%2e/document",
    "/exports/..%2f..%2fledger.csv",
    "/exports/%00.csv",
    "/tile/entries/..%2f..%2f..%2fetc%2fpasswd",
    "/tile/0/../../x",
    "/tile/0/x001/%2e%2e",
    "/tile/99999999999999999999/000",
    "/tile/entries/" + "x999/" * 2000 + "000",
    "/checkpoint/99999999999999999999999999999",
    "/checkpoint/-1",
    "/entries/99999999999999999999999999999",
    "/entries?start=0&stop=99999999999999999999999",
    "/proof/inclusion?index=-1&size=" + "9" * 400,
    "/proof/consistency?old=" + "9" * 400 + "&new=1",
    "/proposals?cursor=" + "A" * 5000,
    "/proposals?cursor=%00",
    "/proposals?as_of=" + "9" * 400,
    "/proposals?limit=" + "9" * 400,
    "/search?q=" + "%00" * 300,
    "/search?q=" + "a" * 20_000,
    "/static/../app.py",
    "/static/..%2f..%2fapi%2fapp.py",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/workspace/static/..%2f..%2f..%2fpyproject.toml",
    "/workspace/static/%00",
    "/workspace/forms/..%2fsign-in",
    "/workspace/forms/" + "a" * 5000,
    "/web/proposals/..%2f..%2fetc%2fpasswd",
    "/web/%2e%2e/%2e%2e/etc/passwd",
    "/web/proposals/%00",
    "/web/proposals/" + "a" * 20_000,
    "/web/search?q=" + "%ff" * 100,
    "/web/strands/%00/%00",
    "/feeds/proposals/%2e%2e.atom",
    "/feeds/..%2f..%2fetc%2fpasswd",
]


def test_path_tricks_are_refused(target: Target) -> None:
    server = target.server
    before = server.size()
    for path in PATH_TRICKS:
        answer = send_raw(server, request("GET", path, content_type=None))
        assert answer.status is not None, path
        assert answer.status < 500, (path, answer.status, answer.body[:300])
        if answer.status == 200:
            # a public listing may answer (a parameter it ignores); never a file of ours
            assert b"root:" not in answer.body, path
            assert b"[project]" not in answer.body, path
            assert b"create_app" not in answer.body, path
            continue
        if 300 <= answer.status < 400:  # signed out of the workspace: to the sign-in page
            location = answer.headers["location"]
            assert location.startswith("/"), (path, location)
            assert not location.startswith("//"), (path, location)
            continue
        assert_refused(answer, path, allow_close=True)
    for path in ("/proposals/%2e%2e/amendments", "/tokens/..%2f/revocation", "/people/%00/erasure"):
        answer = send_raw(server, request("POST", path, b"{}", headers=target.auth))
        assert_refused(answer, path, allow_close=True)
    assert server.size() == before


# 4. headers ---------------------------------------------------------------------------------


def test_header_injection_and_huge_headers_are_refused(target: Target) -> None:
    server = target.server
    before = server.size()
    body = json.dumps({"title": "Header test", "summary": "s"}).encode()
    cases = {
        "CR LF in a header value": "X-Test: a\r\nX-Injected: b\r\n",  # a new header: allowed
        "bare CR in a value": "X-Test: a\rInjected: b\r\n",
        "bare LF in a value": "X-Test: a\nInjected: b\r\n",
        "NUL in a value": "X-Test: a\x00b\r\n",
        "obsolete line folding": "X-Test: a\r\n b\r\n",
        "space before the colon": "X-Test : a\r\n",
        "no colon": "XTest\r\n",
        "Idempotency-Key with control characters": "Idempotency-Key: key\x01\x02\x1b[31m\r\n",
        "Idempotency-Key with DEL and high bytes": "Idempotency-Key: k\x7f\xff\xfe\r\n",
        "Idempotency-Key 10k long": "Idempotency-Key: " + "k" * 10_000 + "\r\n",
        "If-Match garbage": 'If-Match: "\x01\x02"\r\n',
        "If-Match huge": 'If-Match: "' + "9" * 5000 + '"\r\n',
        "X-Request-ID with a newline": "X-Request-ID: a\nb\r\n",
        "X-Request-ID huge": "X-Request-ID: " + "r" * 20_000 + "\r\n",
        "a 100 kB header": "X-Big: " + "b" * 100_000 + "\r\n",
        "a thousand headers": "".join(f"X-H{i}: v\r\n" for i in range(1000)),
        "two Content-Lengths": f"Content-Length: {len(body) + 5}\r\n",
        "Content-Length and chunked": "Transfer-Encoding: chunked\r\n",
        "Authorization with CR LF": "Authorization: Bearer x\r\n\r\nGET / HTTP/1.1\r\n",
    }
    for what, extra in cases.items():
        data = request("POST", "/processes", body, headers=extra + target.auth)
        answer = send_raw(server, data)
        if what == "CR LF in a header value":
            # Two well-formed headers: the request is valid and is recorded (then undone
            # from the count): the point is that nothing else happened.
            assert answer.status == 201, answer
            before += 1
            continue
        if answer.status is not None and answer.status < 300:
            # Idempotency keys and versions are the app's to check: junk is refused.
            if what.startswith(("Idempotency-Key", "If-Match")):
                raise AssertionError((what, answer.status, answer.body[:300]))
            # Otherwise an odd but harmless header the HTTP layer accepted; it is not
            # reflected, and the request id answered is one the server made.
            before += 1
            assert "x-injected" not in answer.headers
            assert len(answer.headers["x-request-id"]) <= 64
            if "X-Request-ID" in what:
                assert answer.headers["x-request-id"] != extra.split(": ", 1)[1].strip()
            continue
        assert_refused(answer, what, allow_close=True)
        for value in answer.headers.values():
            assert "\n" not in value
            assert "\r" not in value
    # a request id that is not well formed is replaced, never echoed
    echoed = send_raw(
        server, request("GET", "/healthz", headers="X-Request-ID: <script>\r\n", content_type=None)
    )
    assert echoed.status == 200
    assert "<" not in echoed.headers.get("x-request-id", "")
    assert server.size() == before


# 5. slow clients --------------------------------------------------------------------------


def test_slow_clients_do_not_block_others(target: Target) -> None:
    """Slowloris: a dozen sockets sending their headers a byte at a time, and one sending
    a body a byte at a time. Meanwhile other clients, reading and writing, are served
    promptly.

    (uvicorn has no timeout for reading a request's headers or body: it does not close
    these clients by itself, however long they trickle; a fronting proxy must. The slow
    sockets here are closed by the test.)"""
    server = target.server
    stop = threading.Event()
    closed: list[float] = []
    started = time.monotonic()

    def trickle(payload: bytes) -> None:
        try:
            with connect(server, timeout=2) as sock:
                for byte in payload:
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.3)
                    sock.settimeout(0.01)
                    try:
                        if sock.recv(1) == b"":
                            closed.append(time.monotonic() - started)
                            return
                    except TimeoutError:
                        pass
                    except OSError:
                        closed.append(time.monotonic() - started)
                        return
        except OSError:
            closed.append(time.monotonic() - started)

    slow_headers = request("GET", "/proposals", content_type=None).replace(
        b"\r\n\r\n", b"\r\n" + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"
    )
    slow_body = request(
        "POST",
        "/processes",
        b'{"title": "slow", "summary": "' + b"s" * 200 + b'"}',
        headers=target.auth,
    )
    threads = [
        threading.Thread(target=trickle, args=(slow_headers,), daemon=True) for _ in range(12)
    ]
    threads.append(threading.Thread(target=trickle, args=(slow_body,), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every slow client is connected and part-way through
    latencies = []
    try:
        with httpx.Client(base_url=server.base, timeout=IO_TIMEOUT) as client:
            for n in range(20):
                t0 = time.monotonic()
                answer = client.get("/proposals?limit=5" if n % 2 else "/checkpoint")
                latencies.append(time.monotonic() - t0)
                assert answer.status_code == 200, answer.text
                t0 = time.monotonic()
                wrote = client.post(
                    "/processes",
                    json={"title": f"Prompt {n}", "summary": "while others trickle"},
                    headers={"Authorization": f"Bearer {target.token}"},
                )
                latencies.append(time.monotonic() - t0)
                assert wrote.status_code == 201, wrote.text
                time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    latencies.sort()
    assert latencies[len(latencies) // 2] < 1.0, latencies
    assert latencies[-1] < 5.0, latencies
