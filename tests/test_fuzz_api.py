"""The REST API fuzzed from its own OpenAPI schema by schemathesis, with every check it has.

A node (SQLite, memory adapters) is served by uvicorn on a free loopback port with an operator,
an auditor and agency keys, and holds delivered messages and dead letters before the run, so
lists, histories and replays answer with real rows. schemathesis then runs all its phases
(coverage of boundary values, fuzzing, stateful sequences) against /openapi.json: as the operator
over every operation, and as an agency over the agencies' operations. Any check that fails
(a 5xx, an answer the schema does not declare, a body or content type that does not match it,
an invalid request accepted, a key ignored) fails the test with the request to reproduce it.

Nothing is left out: replay, discard and retention change the node's state, but only the seeded
rows, and each answer stays one the schema declares whatever state they are in. The failed-login
limit is raised so that the checks sending wrong keys on purpose do not get the fuzzer's own
address answered 429 for the rest of the run (that answer is declared, and tested in test_api).
Examples are bounded and derandomized (no example database) so a run is the same everywhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from schemathesis.engine import StopReason, events, from_schema

from adapters.memory import MemoryOutbound
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.model import DeliveryResult, OutboundMessage
from gateway.runtime import Gateway
from gateway.sim.server import embedded, loopback_socket

from .support.api import KEYS, keyed_config
from .support.records import record

MAX_EXAMPLES = 30  # per operation and phase
REFUSED_CASES = ("FUZZ-DEAD-1", "FUZZ-DEAD-2")  # PROC's system refuses these: they become dead letters


@dataclass
class Node:
    url: str
    gateway: Gateway


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node on its own thread and event loop (schemathesis is synchronous), with a few messages."""
    mp = pytest.MonkeyPatch()
    for name, key in KEYS.items():
        mp.setenv(f"TEST_{name}_KEY", key)
    data = keyed_config(tmp_path_factory.mktemp("fuzz-api") / "data", max_message_bytes=256 * 1024)
    data["gateway"]["refusals"] = {"auth_failures_per_source": 10**6}
    data["agencies"][2]["inbound"] = [{"name": "court-in", "adapter": "memory"}]
    data["agencies"][1]["outbound"]["retry"]["max_attempts"] = 1

    def proc(m: OutboundMessage) -> DeliveryResult:
        if m.case_number in REFUSED_CASES:
            return DeliveryResult.permanent("HTTP 400 from receiver: dossier incomplete")
        return DeliveryResult.delivered()

    outs = {"POLICE": MemoryOutbound(), "PROC": MemoryOutbound(proc), "COURT": MemoryOutbound()}
    gw = Gateway(parse_config(data), outbound=outs)  # type: ignore[arg-type]
    sock = loopback_socket()
    server = embedded(create_app(gw), lifespan="on")
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < end, "the node did not start"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        _seed(url)
        yield Node(url, gw)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        mp.undo()


def _seed(url: str) -> None:
    """Delivered messages and dead letters, so that the fuzzer meets real rows."""
    with httpx.Client(base_url=url, timeout=10) as c:
        police = {"X-API-Key": KEYS["POLICE"], "Content-Type": "application/xml"}
        for case in ("FUZZ-OK-1", "FUZZ-OK-2", *REFUSED_CASES):
            assert c.post("/api/v1/messages", content=record(case=case), headers=police).status_code == 202
        assert c.post("/api/v1/messages", content=b"<not-a-record/>", headers=police).status_code == 422
        operator = {"X-API-Key": KEYS["OPERATOR"]}
        end = time.monotonic() + 20
        while len(c.get("/api/v1/dead-letters", headers=operator).json()) < len(REFUSED_CASES):
            assert time.monotonic() < end, "the seeded dead letters did not appear"
            time.sleep(0.05)


@dataclass
class Outcome:
    cases: int = 0
    per_operation: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)  # first of each kind, with a curl
    errors: list[str] = field(default_factory=list)
    stop: StopReason | None = None


def fuzz(url: str, who: str, tag: str | None = None) -> Outcome:
    """Run every schemathesis phase and check against the node's schema with `who`'s key."""
    config = schemathesis.Config.from_dict({
        "headers": {"X-API-Key": KEYS[who]},
        "workers": 1,
        "seed": 20260101,
        "request-timeout": 30,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {"enabled": True},
        "operations": [{  # a record is any body to the schema; one that fails the standard's rules is refused 422
            "include-path": "/api/v1/messages", "include-method": "POST",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 422, 429]}},
        }, *({  # a day is any YYYY-MM-DD to the schema; one the calendar lacks, or a range backwards, is refused 422
            "include-path": path, "include-method": "GET",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 422, 429]}},
        } for path in ("/api/v1/stats", "/api/v1/rankings", "/api/v1/stats/export"))],
    })
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    if tag is not None:  # (an exclusion: an inclusion would be or-ed with the operations' own entries)
        schema = schema.exclude(lambda ctx: tag not in (ctx.operation.tags or ()))
    out = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            out.cases += len(event.recorder.cases)
            label = event.recorder.label
            out.per_operation[label] = out.per_operation.get(label, 0) + len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                for check in checks:
                    info = check.failure_info
                    if info is None:
                        continue
                    if check.name == "not_a_server_error":
                        out.server_errors += 1
                    out.failures.setdefault((label, check.name, info.failure.title),
                                            f"{info.failure.message}\n    {info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            out.errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            out.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            out.stop = event.stop_reason
    return out


def _report(who: str, out: Outcome, seconds: float) -> str:
    lines = [f"schemathesis as {who}: {out.cases} cases in {seconds:.1f} s, {out.server_errors} server errors, "
             f"{len(out.failures)} kinds of failure, {len(out.errors)} errors"]
    lines += [f"  {n:5d}  {label}" for label, n in sorted(out.per_operation.items())]
    lines += [f"  {label} [{check}] {title}: {detail}" for (label, check, title), detail in out.failures.items()]
    lines += [f"  error {e}" for e in out.errors]
    return "\n".join(lines)


@pytest.mark.parametrize(("who", "tag"), [("OPERATOR", None), ("POLICE", "agencies")])
def test_api_conforms_to_its_schema_under_fuzzing(node: Node, who: str, tag: str | None) -> None:
    started = time.monotonic()
    out = fuzz(node.url, who, tag)
    report = _report(who, out, time.monotonic() - started)
    print(report)
    assert out.stop == StopReason.COMPLETED, report
    assert out.cases >= (500 if tag is None else 100), report
    assert out.server_errors == 0, report
    assert not out.failures and not out.errors, report



@pytest.mark.parametrize("query", [
    "/api/v1/audit?limit=0", "/api/v1/audit?limit=-1", "/api/v1/audit?after_seq=99999999999999999999",
    "/api/v1/deliveries?limit=-3303612411188680327168", "/api/v1/deliveries?limit=-1", "/api/v1/dead-letters?limit=0",
    "/api/v1/deliveries?state=dead&state=waiting", "/api/v1/audit?limit=1&limit=100000",
])
def test_out_of_bounds_and_repeated_parameters_are_refused_422(node: Node, query: str) -> None:
    """What an earlier fuzzing run answered 500 (or with every row) is now a 422 naming the parameter."""
    with httpx.Client(base_url=node.url, headers={"X-API-Key": KEYS["OPERATOR"]}, timeout=10) as c:
        r = c.get(query)
    assert r.status_code == 422, r.text
    (name,) = {e["loc"][-1] for e in r.json()["detail"]}
    assert f"{name}=" in query


def test_a_repeated_parameter_the_operation_does_not_take_is_ignored(node: Node) -> None:
    with httpx.Client(base_url=node.url, headers={"X-API-Key": KEYS["OPERATOR"]}, timeout=10) as c:
        assert c.get("/api/v1/queues?x=1&x=2").status_code == 200
        assert c.get("/api/v1/deliveries?state=dead&limit=5").status_code == 200
