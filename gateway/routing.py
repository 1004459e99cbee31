"""Routes: which action of which stage goes to which agencies (fan-out allowed)."""

from __future__ import annotations

from gateway.config import Route
from gateway.standard import Envelope


class Router:
    def __init__(self, routes: list[Route], known: set[str]) -> None:
        self.routes = routes
        self.known = known

    def destinations(self, env: Envelope) -> tuple[list[str], list[str]]:
        """(destinations, problems). Routes that match add their agencies; so do named receivers."""
        out: list[str] = []
        problems: list[str] = []
        for r in self.routes:
            if r.stage != env.stage or (r.action and r.action != env.action) or (r.sender and r.sender != env.sender):
                continue
            out.extend(d for d in r.to if d not in out and d != env.sender)
        for rcv in env.receivers:
            if rcv not in self.known:
                problems.append(f"the record names receiver {rcv}, which is not an agency connected to the gateway")
            elif rcv not in out and rcv != env.sender:
                out.append(rcv)
        if not out and not problems:
            problems.append(f"no route for stage '{env.stage}', action '{env.action}' from {env.sender}: "
                            "no agency is configured to receive it")
        return out, problems
