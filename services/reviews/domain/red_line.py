"""Red lines (高压线): the rule list as data, and cases that people — never the machine — decide."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.reviews.domain.access import CALIBRATORS, CASE_OPENERS, RULE_KEEPERS, require_role
from services.reviews.domain.values import CaseRef, EvidenceLink, check_evidence_links, require_text
from services.reviews.policy import RedLineRule
from shared.domain import Conflict, Forbidden, Meta, NotFound, RuleViolated, direct_events, stable_id

RULE_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")

FABRICATION = "fabrication_confirmed"  # opened from the visits service's FabricationConfirmed
BY_HAND = "by_hand"
SOURCES = (FABRICATION, BY_HAND)

OPEN, CONFIRMED, DISMISSED = "open", "confirmed", "dismissed"
DECISIONS = (CONFIRMED, DISMISSED)


def check_rule(rule: RedLineRule, field: str = "rule") -> RedLineRule:
    if not RULE_CODE.match(rule.code):
        raise RuleViolated(
            f"rule code '{rule.code}' must be lower-case letters, digits and '_'", field=f"{field}.code"
        )
    return RedLineRule(
        code=rule.code,
        name=require_text(rule.name, f"{field}.name", what="a rule's name"),
        name_zh=rule.name_zh.strip(),
        description=rule.description.strip(),
    )


@direct_events
class RedLineRulebook(Aggregate):
    """The one list of red lines in force. It changes by events, so any case can be read
    against the rules as they stood when it was opened."""

    class Seeded(Aggregate.Created):
        rules: tuple[RedLineRule, ...]
        meta: Meta

    class RuleAdded(Aggregate.Event):
        rule: RedLineRule
        meta: Meta

    class RuleRetired(Aggregate.Event):
        code: str
        reason: str
        meta: Meta

    @staticmethod
    def create_id() -> UUID:
        return stable_id("red-line-rulebook")

    @event(Seeded)
    def __init__(self, rules: tuple[RedLineRule, ...], meta: Meta) -> None:
        self.rules: dict[str, RedLineRule] = {}
        self.retired: dict[str, RedLineRule] = {}
        for rule in rules:
            self.rules[rule.code] = rule

    def rule(self, code: str, field: str = "rule_code") -> RedLineRule:
        try:
            return self.rules[code]
        except KeyError:
            why = "was retired" if code in self.retired else "is not a red line"
            raise RuleViolated(
                f"'{code}' {why}; red lines in force: {', '.join(sorted(self.rules))}", field=field
            ) from None

    def add_rule(self, rule: RedLineRule, meta: Meta) -> None:
        self._rule_added(check_rule(rule), meta)

    @event(RuleAdded)
    def _rule_added(self, rule: RedLineRule, meta: Meta) -> None:
        require_role(meta, RULE_KEEPERS, "change the red-line rules")
        if rule.code in self.rules:
            raise Conflict(f"red line '{rule.code}' is already in force", field="rule.code")
        self.retired.pop(rule.code, None)
        self.rules[rule.code] = rule

    def retire_rule(self, code: str, reason: str, meta: Meta) -> None:
        self._rule_retired(code, require_text(reason, "reason", what="retiring a red line"), meta)

    @event(RuleRetired)
    def _rule_retired(self, code: str, reason: str, meta: Meta) -> None:
        require_role(meta, RULE_KEEPERS, "change the red-line rules")
        if code not in self.rules:
            raise NotFound(f"no red line '{code}' is in force", field="code")
        self.retired[code] = self.rules.pop(code)


@direct_events
class RedLineCase(Aggregate):
    """A suspected red-line breach by one rep, with its evidence, until a person decides it."""

    class Opened(Aggregate.Created):
        case_key: str
        rep_id: str
        region: str
        rule_code: str
        rule_name: str
        source: str
        evidence: tuple[EvidenceLink, ...]
        description: str
        visit_id: str | None
        meta: Meta

    class Decided(Aggregate.Event):
        subject: CaseRef
        decision: str
        reason: str
        meta: Meta

    @staticmethod
    def create_id(case_key: str) -> UUID:
        return stable_id("red-line-case", case_key)

    @staticmethod
    def fabrication_key(visit_id: str) -> str:
        """One case per fabricated visit, however often the confirmation is delivered."""
        return f"fabrication:{visit_id}"

    @event(Opened)
    def __init__(
        self,
        case_key: str,
        rep_id: str,
        region: str,
        rule_code: str,
        rule_name: str,
        source: str,
        evidence: tuple[EvidenceLink, ...],
        description: str,
        visit_id: str | None,
        meta: Meta,
    ) -> None:
        if source not in SOURCES:
            raise RuleViolated(f"unknown case source '{source}'", field="source")
        if source == BY_HAND:
            require_role(meta, CASE_OPENERS, "open a red-line case by hand")
            if meta.actor_id == rep_id:
                raise Forbidden("nobody opens a red-line case against themself")
        self.case_key = case_key
        self.rep_id = rep_id
        self.region = region
        self.rule_code = rule_code
        self.rule_name = rule_name
        self.source = source
        self.evidence = tuple(evidence)
        self.description = description
        self.visit_id = visit_id
        self.opened_by = meta.actor_id
        self.opened_at: datetime = meta.at
        self.status = OPEN
        self.decision_reason = ""
        self.decided_by: str | None = None
        self.decided_at: datetime | None = None

    @classmethod
    def open_by_hand(
        cls,
        case_key: str,
        rep_id: str,
        region: str,
        rule: RedLineRule,
        evidence: Sequence[EvidenceLink],
        description: str,
        meta: Meta,
    ) -> RedLineCase:
        links = check_evidence_links(evidence)
        text = require_text(description, "description", what="a red-line case")
        require_text(rep_id, "rep_id", what="the rep")
        return cls(case_key, rep_id, region, rule.code, rule.name, BY_HAND, links, text, None, meta)

    @classmethod
    def open_from_fabrication(
        cls,
        rep_id: str,
        region: str,
        rule: RedLineRule,
        visit_id: str,
        evidence: Sequence[EvidenceLink],
        reason: str,
        meta: Meta,
    ) -> RedLineCase:
        """Opened by the service itself when qc has confirmed a fabricated visit."""
        return cls(
            cls.fabrication_key(visit_id),
            rep_id,
            region,
            rule.code,
            rule.name,
            FABRICATION,
            check_evidence_links(evidence),
            reason.strip() or "fabricated visit confirmed by quality control",
            visit_id,
            meta,
        )

    @property
    def ref(self) -> CaseRef:
        return CaseRef(self.rep_id, self.region, self.rule_code)

    @property
    def confirmed(self) -> bool:
        return self.status == CONFIRMED

    def decide(self, decision: str, reason: str, meta: Meta) -> None:
        if decision not in DECISIONS:
            raise RuleViolated(
                f"a decision is 'confirmed' or 'dismissed', not '{decision}'", field="decision"
            )
        self._decided(self.ref, decision, require_text(reason, "reason", what="a decision"), meta)

    @event(Decided)
    def _decided(self, subject: CaseRef, decision: str, reason: str, meta: Meta) -> None:
        if meta.actor_role == "system":
            raise Forbidden("a red-line case is decided by a person, never by the machine")
        require_role(meta, CALIBRATORS, "decide a red-line case")
        if meta.actor_id == self.rep_id:
            raise Forbidden("nobody decides a red-line case about themself")
        if self.status != OPEN:
            raise Conflict(f"the case is already {self.status} by {self.decided_by}")
        self.status = decision
        self.decision_reason = reason
        self.decided_by = meta.actor_id
        self.decided_at = meta.at
