"""A deployment's adaptations of the standard's rules, and the gate that keeps unknown codes out.

The standard's rules are one set for every agency, but a deployment sometimes has a legitimate
local need: a rule a court does not apply yet, a warning a procuratorate wants as a block, a
check of its own for one route. Those are data in the gateway's configuration (`rules:`), each
with the records it applies to (stage, action, sender) and why. Every adaptation is shown where
people look (check-config, the console, the exchange log at start), so an auditor can tell which
rules were in force when a record was judged.

A record meets a few sets of adaptations at most, all known from the configuration: the rule set
for each is built when the node is assembled, so judging a record costs one dictionary look-up
more than with the standard's rules alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import Problem
from gateway.rules import Rule, RuleSet, code_list, make_rule, nearest, standard_rules

if TYPE_CHECKING:
    from gateway.config import RuleAdaptations, RuleSelector

# The rules that keep records with codes the standard does not know out (stage, action). A record
# whose stage or action is not listed cannot be judged: the rules tied to a stage or an action
# would silently not apply to it. Only an inbound channel's `unknown_codes: warn` eases them.
GATE = {"CODE-01": "stage", "CODE-02": "action"}


@dataclass(frozen=True)
class Adaptation:
    """One change to the standard's rules, for the records its selectors name."""

    key: str  # where the configuration says it, e.g. rules.disable[0]
    change: str  # disable | severity | add
    rule: Rule  # disable: the standard's rule; severity: with its new severity; add: the deployment's own
    reason: str
    stage: str | None = None
    action: str | None = None
    sender: str | None = None
    standard_severity: str = ""  # the rule's severity in the standard ("" for an added rule)

    def applies(self, stage: str, action: str, sender: str) -> bool:
        return self.stage in (None, stage) and self.action in (None, action) and self.sender in (None, sender)

    def scope(self) -> str:
        """Which records, in words: 'stage trial, from COURT' or 'every record'."""
        parts = [f"{what} {value}" for what, value in (("stage", self.stage), ("action", self.action))
                 if value is not None]
        if self.sender is not None:
            parts.append(f"from {self.sender}")
        return ", ".join(parts) or "every record"

    def summary(self) -> str:
        if self.change == "disable":
            return f"{self.rule.id} ({self.standard_severity}) not applied"
        if self.change == "severity":
            return f"{self.rule.id} {self.rule.severity} instead of {self.standard_severity}"
        return f"{self.rule.id} added ({self.rule.severity}): {self.rule.en}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key, "change": self.change, "rule": self.rule.id, "severity": self.rule.severity,
            "standard_severity": self.standard_severity or None, "stage": self.stage, "action": self.action,
            "sender": self.sender, "applies_to": self.scope(), "reason": self.reason, "summary": self.summary(),
        }
        if self.change == "add":
            out.update(context=self.rule.context, test=self.rule.test,
                       message={"zh": self.rule.zh, "en": self.rule.en},
                       **({"hint": {"zh": self.rule.hint_zh, "en": self.rule.hint_en}} if self.rule.hint_en else {}))
        return out


def overlap(a: Adaptation, b: Adaptation) -> bool:
    """Some record meets both (each selector equal, or absent in one of them)."""
    return all(x is None or y is None or x == y
               for x, y in ((a.stage, b.stage), (a.action, b.action), (a.sender, b.sender)))


class AdaptedRules:
    """The rule set in force for each record: the standard's, with the adaptations it meets."""

    def __init__(self, adaptations: Sequence[Adaptation], versions: Sequence[str]) -> None:
        self.adaptations = tuple(adaptations)
        self._stages = {a.stage for a in adaptations if a.stage is not None}
        self._actions = {a.action for a in adaptations if a.action is not None}
        self._senders = {a.sender for a in adaptations if a.sender is not None}
        # "" stands for every value no selector names: it meets exactly the adaptations without one.
        built: dict[tuple[str, frozenset[int]], RuleSet] = {}
        self._sets: dict[tuple[str, str, str, str], RuleSet] = {}
        for major in versions:
            try:
                base = standard_rules(major)
            except (OSError, ConfigError):
                continue  # no such version: validation refuses its records before the rules
            for stage in (*self._stages, ""):
                for action in (*self._actions, ""):
                    for sender in (*self._senders, ""):
                        met = frozenset(i for i, a in enumerate(adaptations) if a.applies(stage, action, sender))
                        if (major, met) not in built:
                            built[major, met] = self._adapt(base, [adaptations[i] for i in sorted(met)])
                        self._sets[major, stage, action, sender] = built[major, met]

    @staticmethod
    def _adapt(base: RuleSet, met: list[Adaptation]) -> RuleSet:
        if not met:
            return base
        return base.adapted({a.rule.id for a in met if a.change == "disable"},
                            {a.rule.id: a.rule.severity for a in met if a.change == "severity"},
                            [a.rule for a in met if a.change == "add"],
                            f"{base.source} adapted by {', '.join(a.key for a in met)}")

    def rules_for(self, major: str, stage: str, action: str, sender: str) -> RuleSet:
        key = (major, stage if stage in self._stages else "", action if action in self._actions else "",
               sender if sender in self._senders else "")
        found = self._sets.get(key)
        return found if found is not None else standard_rules(major)


def trial(rule: Rule, major: str) -> str | None:
    """Why `rule` cannot run (compiled, then checked on each of the standard's examples), or None.

    A test that compiles may still fail when it runs (a function no one registered); a rule of a
    deployment's own is tried before the node starts, so such a mistake stops the configuration,
    not a record.
    """
    examples = resources.files("standards") / "case-exchange" / f"v{major}" / "examples"
    try:
        rules = RuleSet([rule], "the configuration")
        for example in sorted(examples.iterdir(), key=lambda f: f.name):
            if example.name.endswith(".xml"):
                rules.check(etree.fromstring(example.read_bytes()), strict=True)
    except (etree.Error, ConfigError) as e:
        return str(e).strip() or type(e).__name__
    return None


# -- from the configuration -------------------------------------------------------------------------
def _standard_rules(versions: Sequence[str]) -> list[tuple[str, RuleSet]]:
    found = []
    for major in versions:
        try:
            found.append((major, standard_rules(major)))
        except (OSError, ConfigError):
            continue  # a version the gateway does not have: its records are refused before the rules
    return found


def from_config(section: RuleAdaptations, versions: Sequence[str]) -> list[Adaptation]:
    """The configuration's `rules:` section as the rule sets apply it (checked by `check_config`)."""
    sets = _standard_rules(versions)
    standard = {r.id: r for _, rs in reversed(sets) for r in rs.rules}
    out: list[Adaptation] = []
    for i, d in enumerate(section.disable):
        rule = standard[d.rule]
        out.append(Adaptation(f"rules.disable[{i}]", "disable", rule, d.reason, d.stage, d.action, d.sender,
                              rule.severity))
    for i, c in enumerate(section.severity):
        rule = standard[c.rule]
        out.append(Adaptation(f"rules.severity[{i}]", "severity", replace(rule, severity=c.severity), c.reason,
                              c.stage, c.action, c.sender, rule.severity))
    for i, n in enumerate(section.add):
        rule = make_rule(n.model_dump(), "local", f"rules.add[{i}]")
        out.append(Adaptation(f"rules.add[{i}]", "add", rule, n.reason, n.stage, n.action, n.sender))
    return out


def check_config(section: RuleAdaptations, versions: Sequence[str], agencies: set[str] | None) -> None:
    """Every id, code and agency an adaptation names exists, every added rule runs, and no two adapt
    one rule for one record; a ValueError says which key is wrong (the configuration names the file)."""
    sets = _standard_rules(versions)
    for major, rs in sets:
        ids = [r.id for r in rs.rules]
        named = [*((f"disable[{i}]", d.rule) for i, d in enumerate(section.disable)),
                 *((f"severity[{i}]", c.rule) for i, c in enumerate(section.severity))]
        for key, rid in named:
            if rid not in ids:
                raise ValueError(f"{key}.rule: the standard (v{major}) has no rule '{rid}' "
                                 f"(nearest: {nearest(rid, ids)})")
            if rid in GATE:
                raise ValueError(f"{key}.rule: {rid} keeps out records whose {GATE[rid]} code the standard "
                                 "does not know, as they cannot be judged; for a migration period set "
                                 "unknown_codes: warn on the inbound channel instead")
        for i, c in enumerate(section.severity):
            if rs.rules[ids.index(c.rule)].severity == c.severity:
                raise ValueError(f"severity[{i}].severity: {c.rule} is already {c.severity} in the standard")
        added: set[str] = set()
        for i, n in enumerate(section.add):
            if n.id in ids:
                raise ValueError(f"add[{i}].id: {n.id} is a rule of the standard; give the rule an id of its own, "
                                 "or adapt the standard's under disable or severity")
            if n.id in added:
                raise ValueError(f"add[{i}].id: {n.id} is added twice")
            added.add(n.id)
    every: list[tuple[str, RuleSelector]] = [
        *((f"disable[{i}]", d) for i, d in enumerate(section.disable)),
        *((f"severity[{i}]", c) for i, c in enumerate(section.severity)),
        *((f"add[{i}]", n) for i, n in enumerate(section.add))]
    for key, sel in every:
        for field, listed in (("stage", "stages"), ("action", "actions")):
            value = getattr(sel, field)
            if value is not None and value not in code_list(listed):
                raise ValueError(f"{key}.{field}: '{value}' is not in the standard's code list of {listed} "
                                 f"(nearest: {nearest(value, code_list(listed))})")
        if sel.sender is not None and agencies is not None and sel.sender not in agencies:
            raise ValueError(f"{key}.sender: agency {sel.sender} is not defined")
    try:
        adaptations = from_config(section, versions)
    except ConfigError as e:
        raise ValueError(str(e).removeprefix("rules.")) from None
    for a in adaptations:
        for major, _ in sets:
            why = trial(a.rule, major) if a.change == "add" else None
            if why:
                raise ValueError(f"{a.key.removeprefix('rules.')}: the rule cannot run: {why}")
    for i, a in enumerate(adaptations):
        for b in adaptations[i + 1:]:
            if a.rule.id == b.rule.id and overlap(a, b):
                raise ValueError(f"{a.key.removeprefix('rules.')} and {b.key.removeprefix('rules.')} both adapt "
                                 f"{a.rule.id} for some of the same records; give them selectors no record meets "
                                 "both of")


def admit_unknown_codes(problems: list[Problem], channel: str) -> tuple[list[Problem], list[Problem]]:
    """The findings with the gate's turned into warnings that say why they did not block, and those.

    For a channel in a migration period (`unknown_codes: warn`): its records with an unknown stage
    or action are delivered, and the warning tells the receiver and the operator that the rules
    tied to that code could not be applied.
    """
    admitted: list[Problem] = []
    out: list[Problem] = []
    for p in problems:
        if p.rule in GATE and p.severity == "block":
            what = GATE[p.rule]
            p = replace(
                p, severity="warn",
                message=f"{p.message}; passed on only because channel {channel} admits unknown codes for a "
                        f"migration period (unknown_codes: warn): the rules tied to its {what} were not applied",
                message_zh=f"{p.message_zh}；仅因通道 {channel} 处于迁移期（unknown_codes: warn）而放行，"
                           f"与{'诉讼阶段' if what == 'stage' else '业务动作'}相关的规则未予适用")
            admitted.append(p)
        out.append(p)
    return out, admitted
