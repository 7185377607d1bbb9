"""Value objects and pure helpers of the reviews domain: the six values, quarters, evidence, 通关."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.domain import RuleViolated

# The six values (价值观), in the order the company states them.
VALUES: tuple[str, ...] = (
    "customer_first",  # 客户第一
    "teamwork",  # 团队合作
    "embrace_change",  # 拥抱变化
    "integrity",  # 诚信
    "passion",  # 激情
    "dedication",  # 敬业
)
VALUE_NAMES_ZH: Mapping[str, str] = {
    "customer_first": "客户第一",
    "teamwork": "团队合作",
    "embrace_change": "拥抱变化",
    "integrity": "诚信",
    "passion": "激情",
    "dedication": "敬业",
}
MAX_LEVEL = 5
MAX_RATING = 5

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter, written "2026Q1" in events and on the wire."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str, field: str = "quarter") -> Quarter:
        match = _QUARTER.match(text)
        if match is None:
            raise RuleViolated(f"'{text}' is not a quarter like 2026Q1", field=field)
        year = int(match.group(1))
        if not 1970 <= year <= 2200:  # dates outside this are no business of a sales force
            raise RuleViolated(f"'{text}': the year must be between 1970 and 2200", field=field)
        return cls(year, int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Quarter:
        moment = moment.astimezone(UTC)
        return cls(moment.year, (moment.month - 1) // 3 + 1)

    @property
    def starts_at(self) -> datetime:
        return datetime(self.year, 3 * (self.number - 1) + 1, 1, tzinfo=UTC)

    @property
    def ends_at(self) -> datetime:
        """The first moment of the next quarter."""
        return self.next().starts_at

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"


def require_text(text: str, field: str, *, min_chars: int = 1, what: str = "this") -> str:
    """A written reason or example: refused when blank or too short to mean anything."""
    stripped = text.strip()
    if not stripped:
        raise RuleViolated(f"{what} needs a written text", field=field)
    if len(stripped) < min_chars:
        raise RuleViolated(
            f"{what} is too short ({len(stripped)} characters, at least {min_chars})", field=field
        )
    return stripped


def require_value(value: str, field: str) -> str:
    if value not in VALUES:
        raise RuleViolated(f"'{value}' is not one of the six values ({', '.join(VALUES)})", field=field)
    return value


def require_rating(rating: int, field: str = "rating") -> int:
    if not 1 <= rating <= MAX_RATING:
        raise RuleViolated(f"a rating is 1 to {MAX_RATING}, not {rating}", field=field)
    return rating


@dataclass(frozen=True)
class ValueEvidence:
    """One point of one value, backed by a written example of the behaviour (行为事例)."""

    value: str
    level: int
    example: str


@dataclass(frozen=True)
class ValueAdjustment:
    """HR's calibrated score for one value (levels 1..score are taken as met)."""

    value: str
    score: int


@dataclass(frozen=True)
class EvidenceLink:
    """Something that proves a red-line breach: an event id, a visit, a flag, a document."""

    kind: str
    ref: str
    note: str = ""


EVIDENCE_KINDS = ("event", "visit", "flag", "document", "url")


def check_evidence_links(links: Iterable[EvidenceLink], field: str = "evidence") -> tuple[EvidenceLink, ...]:
    checked = tuple(links)
    if not checked:
        raise RuleViolated("a red-line case needs at least one piece of evidence", field=field)
    for i, link in enumerate(checked):
        if link.kind not in EVIDENCE_KINDS:
            raise RuleViolated(
                f"evidence kind '{link.kind}' is not one of {', '.join(EVIDENCE_KINDS)}",
                field=f"{field}[{i}].kind",
            )
        require_text(link.ref, f"{field}[{i}].ref", what="an evidence link")
    return checked


def check_value_evidence(
    evidence: Iterable[ValueEvidence], *, min_example_chars: int, field: str = "evidence"
) -> tuple[ValueEvidence, ...]:
    """Every claimed point names a value, a level 1–5 and a written example; none twice."""
    checked: list[ValueEvidence] = []
    seen: set[tuple[str, int]] = set()
    for i, item in enumerate(evidence):
        require_value(item.value, f"{field}[{i}].value")
        if not 1 <= item.level <= MAX_LEVEL:
            raise RuleViolated(f"a level is 1 to {MAX_LEVEL}, not {item.level}", field=f"{field}[{i}].level")
        if (item.value, item.level) in seen:
            raise RuleViolated(f"{item.value} level {item.level} is given twice", field=f"{field}[{i}].level")
        seen.add((item.value, item.level))
        example = require_text(
            item.example,
            f"{field}[{i}].example",
            min_chars=min_example_chars,
            what=f"the example for {item.value} level {item.level}",
        )
        checked.append(ValueEvidence(item.value, item.level, example))
    return tuple(checked)


def tongguan_score(levels_met: Iterable[int]) -> int:
    """通关: a level counts only if every lower level is met; the score is the top of that run.

    Levels {1, 2, 4} score 2: without 3, the 4 is not earned.
    """
    met = set(levels_met)
    score = 0
    while score + 1 in met:
        score += 1
    return score


def levels_by_value(evidence: Iterable[ValueEvidence]) -> dict[str, frozenset[int]]:
    """The levels met for each of the six values (a value with no evidence has none)."""
    levels: dict[str, set[int]] = {value: set() for value in VALUES}
    for item in evidence:
        levels[item.value].add(item.level)
    return {value: frozenset(met) for value, met in levels.items()}


def value_scores(levels: Mapping[str, Iterable[int]]) -> dict[str, int]:
    return {value: tongguan_score(levels.get(value, ())) for value in VALUES}


@dataclass(frozen=True)
class ReviewRef:
    """Whose review, where and when: carried by every review event so its public form stands alone."""

    rep_id: str
    region: str
    quarter: str


@dataclass(frozen=True)
class CaseRef:
    """Whose red-line case and under which rule: carried by a case's later events."""

    rep_id: str
    region: str
    rule_code: str
