"""/metrics on a real server, read with Prometheus's own text parser: intake, attempts, queues."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.model import DeliveryResult

from .support.api import KEYS, Running
from .support.records import record
from .support.waiting import wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


async def test_metrics_count_what_came_in_and_how_each_attempt_ended(api: Running) -> None:  # noqa: F811
    api.outs["PROC"].handler = lambda m: (DeliveryResult.permanent("HTTP 400: no") if m.case_number == "MET-3"
                                          else DeliveryResult.delivered())
    for case in ("MET-1", "MET-2", "MET-3"):
        assert (await api.submit("POLICE", record(case=case))).status_code == 202
    assert (await api.submit("POLICE", record(case="MET-1"))).status_code == 200  # a resend
    assert (await api.submit("POLICE", record(case="MET-4", stage="nonsense"))).status_code == 422

    async def all_ended() -> bool:
        return len(api.outs["PROC"].received) >= 3 and not [
            q for q in (await api.call("OPERATOR", "GET", "/api/v1/queues")).json()
            if q["state"] in ("queued", "in_flight")]

    await wait_for(all_ended)
    assert (await api.call(None, "GET", "/metrics")).status_code == 401
    assert (await api.call("POLICE", "GET", "/metrics")).status_code == 403
    r = await api.call(None, "GET", "/metrics", headers={"Authorization": f"Bearer {KEYS['AUDITOR']}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    taken = {o: got.get(("gateway_records_total", (("channel", "police-in"), ("outcome", o))))
             for o in ("accepted", "duplicate", "rejected")}
    assert taken == {"accepted": 3, "duplicate": 1, "rejected": 1}
    ended = {res: got.get(("gateway_delivery_attempts_total", (("destination", "PROC"), ("result", res))))
             for res in ("delivered", "dead")}
    assert ended == {"delivered": 2, "dead": 1}
    assert got[("gateway_delivery_attempt_seconds_count", (("destination", "PROC"),))] == 3
    assert got[("gateway_queued_to_delivered_seconds_count", (("destination", "PROC"),))] == 2  # not the dead one
    assert 0 < got[("gateway_queued_to_delivered_seconds_sum", (("destination", "PROC"),))] < 10
    assert got[("gateway_deliveries", (("destination", "PROC"), ("state", "dead")))] == 1
    assert got[("gateway_deliveries", (("destination", "PROC"), ("state", "delivered")))] == 2
    assert got[("gateway_exchange_log_entries", ())] > 10
    assert "MET-" not in r.text, "no case data in metrics"


async def test_the_oldest_waiting_delivery_shows_its_age(api: Running) -> None:  # noqa: F811
    api.outs["PROC"].handler = lambda m: DeliveryResult.transient("receiver down")
    assert (await api.submit("POLICE", record(case="AGE-1"))).status_code == 202

    key = ("gateway_oldest_waiting_seconds", (("destination", "PROC"),))
    attempts = ("gateway_delivery_attempts_total", (("destination", "PROC"), ("result", "retrying")))
    got: dict = {}

    async def retrying() -> bool:  # the attempt's result is committed after the receiver saw the record
        nonlocal got
        got = samples((await api.call("OPERATOR", "GET", "/metrics")).text)
        return bool(api.outs["PROC"].received) and key in got and attempts in got

    await wait_for(retrying)
    age = got[key]
    assert 0 <= age < 30
    assert got[attempts] >= 1


