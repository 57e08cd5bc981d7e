"""Routing filters per second: `Filter.from_definition` + `evaluate` against a plain loop.

200 filters of mixed operators (all 8) over email, name, subject, body, a header and a form
field, `match` all or any, a few with `stop_on_match`, built so that most filters do not fire
on most tickets (as in a real help desk). 10,000 generated `TicketFacts` go through
`evaluate(filters, facts)` one by one. The raw reference evaluates the same filters with the
same semantics (all/any short-circuit, negation, stop on match) in one plain Python loop over
pre-lowercased strings with `==`, `in`, `startswith`, `endswith` and precompiled `re.search`;
both must pick the same filters for every ticket.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.routing.domain.filters import OPS, Filter, TicketFacts, evaluate

SEED = 20_260_105
FIELDS = ("email", "name", "subject", "body", "header:X-Mailer", "field:tier")


def _words(text: str) -> list[str]:
    return text.split()


_COMMON_WORDS = _words(
    "account invoice login password reset order shipping delivery refund payment card "
    "error page app mobile update install browser email address change cancel subscription "
    "plan upgrade downgrade question help support problem issue broken slow cannot access "
    "report export import data file upload download sync calendar contact team user admin "
    "permission role settings profile photo notification alert message chat phone call "
    "meeting schedule time zone language translation price discount coupon trial renewal "
    "license key api token webhook integration crash freeze screen button link form"
)
_RARE_WORDS = [f"zq{word}" for word in ("gdpr", "lawsuit", "outage", "phishing", "breach")] + [
    f"rare{i:02d}" for i in range(40)
]
_FIRST = _words("Ana Ben Chloe David Emma Farid Grace Hugo Ines Jonas Kira Liam Mona Noah Olga")
_LAST = _words("Smith Garcia Muller Rossi Dubois Novak Silva Kowalski Jensen Tanaka Okafor Berg")
_DOMAINS = [f"customer{i}.example.com" for i in range(40)] + ["gmail.com", "outlook.com"]
_RARE_DOMAINS = [f"vip{i}.example.org" for i in range(10)]
_MAILERS = ["Microsoft Outlook 16.0", "Apple Mail (2.3696)", "Thunderbird 115.4", "Gmail"]
_RARE_MAILERS = ["BulkMailer 3.1", "MassSend Pro", "autoresponder/1.0"]
_TIERS = ["free", "pro", "business"]
_RARE_TIERS = ["enterprise", "partner"]


# -- the workload -------------------------------------------------------------------------------


def make_tickets(count: int, rng: random.Random) -> list[TicketFacts]:
    """Tickets whose rare values (what filters look for) each turn up in ~1% of them."""

    def words(n: int) -> list[str]:
        chosen = [rng.choice(_COMMON_WORDS) for _ in range(n)]
        if rng.random() < 0.15:  # a rare word somewhere in ~15% of texts, each word ~0.3%
            chosen[rng.randrange(n)] = rng.choice(_RARE_WORDS)
        return chosen

    tickets = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = rng.choice(_RARE_DOMAINS) if rng.random() < 0.02 else rng.choice(_DOMAINS)
        user = f"{first}.{last}{i % 97}".lower()
        if rng.random() < 0.01:
            user = f"billing-{user}"
        subject = " ".join(words(rng.randint(4, 9))).capitalize()
        if rng.random() < 0.02:
            subject = f"[{rng.choice(('URGENT', 'SECURITY', 'LEGAL'))}] {subject}"
        if rng.random() < 0.01:
            subject += f" order #{rng.randint(1_000_000, 9_999_999)}"
        body = " ".join(words(rng.randint(40, 120))) + f"\n\n-- \n{first} {last}"
        mailer = rng.choice(_RARE_MAILERS) if rng.random() < 0.02 else rng.choice(_MAILERS)
        tier = rng.choice(_RARE_TIERS) if rng.random() < 0.02 else rng.choice(_TIERS)
        tickets.append(
            TicketFacts(
                channel="email" if rng.random() < 0.8 else "web",
                email=f"{user}@{domain}",
                name=f"{first} {last}",
                subject=subject,
                body=body,
                headers={"X-Mailer": mailer},
                fields={"tier": tier},
            )
        )
    return tickets


def _rare_rule(rng: random.Random, op: str, field: str) -> dict[str, Any]:
    """A positive rule that holds for few tickets (or a negated one that holds for most)."""
    positive = op.removeprefix("not_")
    if field == "email":
        domain = rng.choice(_RARE_DOMAINS)
        value = {
            "equal": f"someone{rng.randrange(99)}@{domain}",
            "contains": f"@{domain}",
            "starts_with": "billing-",
            "ends_with": f"@{domain}",
            "match": rf"^billing-.*@{re.escape(domain)}$",
        }[positive]
    elif field == "name":
        value = {
            "equal": f"{rng.choice(_FIRST)} Zzyzx",
            "contains": "zzyzx",
            "starts_with": "Dr. ",
            "ends_with": " Zzyzx",
            "match": r"^(mr|mrs|dr)\.?\s",
        }[positive]
    elif field in ("subject", "body"):
        word = rng.choice(_RARE_WORDS)
        value = {
            "equal": f"{word} {rng.choice(_COMMON_WORDS)}",
            "contains": word,
            "starts_with": rng.choice(("[URGENT]", "[SECURITY]", "[LEGAL]")),
            "ends_with": f"{word}",
            "match": rf"\b{word}\b" if rng.random() < 0.5 else r"order\s*#?\d{7}\b",
        }[positive]
    elif field == "header:X-Mailer":
        mailer = rng.choice(_RARE_MAILERS)
        value = {
            "equal": mailer,
            "contains": mailer.split()[0].lower(),
            "starts_with": mailer[:6],
            "ends_with": mailer[-4:],
            "match": r"bulk|masssend|autorespond",
        }[positive]
    else:  # field:tier
        tier = rng.choice(_RARE_TIERS)
        value = {
            "equal": tier,
            "contains": tier[2:6],
            "starts_with": tier[:4],
            "ends_with": tier[-4:],
            "match": rf"^{tier}$",
        }[positive]
    return {"field": field, "op": op, "value": value}


def make_filters(count: int, rng: random.Random) -> list[Filter]:
    """`count` filters; every field and operator is used. A negated rule (which holds for most
    tickets) only ever sits in a match-all filter beside a rare positive one."""
    positive_ops = [op for op in OPS if not op.startswith("not_")]
    negative_ops = [op for op in OPS if op.startswith("not_")]
    definitions = []
    for i in range(count):
        match = "any" if rng.random() < 0.3 else "all"
        rules = []
        # Cycle through fields and operators first so each one is covered.
        first_field = FIELDS[i % len(FIELDS)]
        first_op = positive_ops[i % len(positive_ops)]
        rules.append(_rare_rule(rng, first_op, first_field))
        for _ in range(rng.randint(0, 2)):
            field = rng.choice(FIELDS)
            if match == "all" and rng.random() < 0.6:
                op = negative_ops[(i + len(rules)) % len(negative_ops)]
            else:
                op = rng.choice(positive_ops)
            rules.append(_rare_rule(rng, op, field))
        rng.shuffle(rules)
        definition: dict[str, Any] = {
            "id": i + 1,
            "name": f"bench filter {i + 1}",
            "order": rng.randint(0, 20),
            "match": match,
            "rules": rules,
            "actions": [{"type": "department", "value": 1 + i % 5}],
            "stop_on_match": i % 40 == 39,  # a few
        }
        if rng.random() < 0.2:
            definition["channels"] = ["email"]
        definitions.append(definition)
    filters = [Filter.from_definition(d) for d in definitions]
    used = {(r.field, r.op) for f in filters for r in f.rules}
    assert {field for field, _ in used} == set(FIELDS), used
    assert {op for _, op in used} == set(OPS), used
    return filters


# -- the raw reference --------------------------------------------------------------------------

_EQUAL, _CONTAINS, _STARTS, _ENDS, _MATCH = range(5)
_OPCODES = {"equal": _EQUAL, "contains": _CONTAINS, "starts_with": _STARTS, "ends_with": _ENDS}


@dataclass(frozen=True)
class RawFilter:
    id: int
    match_all: bool
    stop_on_match: bool
    channels: tuple[str, ...]
    rules: tuple[tuple[str, int, Any, bool], ...]  # (fact key, opcode, value or pattern, negate)


def raw_filters(filters: Sequence[Filter]) -> list[RawFilter]:
    out = []
    for flt in sorted(filters, key=lambda f: (f.order, f.id)):
        rules: list[tuple[str, int, Any, bool]] = []
        for rule in flt.rules:
            negate = rule.op.startswith("not_")
            positive = rule.op.removeprefix("not_")
            if positive == "match":
                rules.append((rule.field, _MATCH, re.compile(rule.value, re.IGNORECASE), negate))
            else:
                rules.append((rule.field, _OPCODES[positive], rule.value.lower(), negate))
        out.append(
            RawFilter(flt.id, flt.match == "all", flt.stop_on_match, flt.channels, tuple(rules))
        )
    return out


def lowered_facts(tickets: Sequence[TicketFacts]) -> list[tuple[str, dict[str, str]]]:
    """(channel, field -> lower-cased text), computed before the timed loop."""
    out = []
    for t in tickets:
        mailer = t.headers.get("X-Mailer", "")
        assert isinstance(mailer, str)
        texts = {
            "email": t.email.lower(),
            "name": t.name.lower(),
            "subject": t.subject.lower(),
            "body": t.body.lower(),
            "header:X-Mailer": mailer.lower(),
            "field:tier": str(t.fields.get("tier", "")).lower(),
        }
        out.append((t.channel, texts))
    return out


def raw_evaluate(
    filters: Sequence[RawFilter], tickets: Sequence[tuple[str, dict[str, str]]]
) -> tuple[list[tuple[int, ...]], int, int]:
    """Matched filter ids per ticket, filters looked at, rule comparisons made."""
    results: list[tuple[int, ...]] = []
    filters_seen = comparisons = 0
    for channel, texts in tickets:
        matched: list[int] = []
        for flt in filters:
            if flt.channels and channel not in flt.channels:
                continue
            filters_seen += 1
            hit = flt.match_all
            for key, opcode, value, negate in flt.rules:
                comparisons += 1
                text = texts[key]
                if opcode == _EQUAL:
                    holds = text == value
                elif opcode == _CONTAINS:
                    holds = value in text
                elif opcode == _STARTS:
                    holds = text.startswith(value)
                elif opcode == _ENDS:
                    holds = text.endswith(value)
                else:
                    holds = value.search(text) is not None
                if holds is negate:  # this rule is false
                    if flt.match_all:
                        hit = False
                        break
                elif not flt.match_all:
                    hit = True
                    break
            if hit:
                matched.append(flt.id)
                if flt.stop_on_match:
                    break
        results.append(tuple(matched))
    return results, filters_seen, comparisons


# -- the measurement ----------------------------------------------------------------------------


def filter_rate(tickets: int = 10_000, filters: int = 200, repeats: int = 3) -> dict[str, Any]:
    """tickets/s and filter evaluations/s of `evaluate`, next to the plain loop (best of
    `repeats` each)."""
    rng = random.Random(SEED)
    compiled = make_filters(filters, rng)
    facts = make_tickets(tickets, rng)
    raw = raw_filters(compiled)
    lowered = lowered_facts(facts)

    best = float("inf")
    outcomes = []
    for _ in range(repeats):
        began = time.perf_counter()
        outcomes = [evaluate(compiled, f) for f in facts]
        best = min(best, time.perf_counter() - began)

    raw_best = float("inf")
    raw_matches: list[tuple[int, ...]] = []
    filters_seen = comparisons = 0
    for _ in range(repeats):
        began = time.perf_counter()
        raw_matches, filters_seen, comparisons = raw_evaluate(raw, lowered)
        raw_best = min(raw_best, time.perf_counter() - began)

    matched = [o.matched_filter_ids for o in outcomes]
    mismatches = sum(1 for a, b in zip(matched, raw_matches, strict=True) if a != b)
    per_ticket = [len(m) for m in matched]
    evaluations = tickets * filters
    rate = evaluations / best
    raw_rate = evaluations / raw_best
    return {
        "tickets": tickets,
        "filters": filters,
        "repeats": repeats,
        "rules": sum(len(f.rules) for f in compiled),
        "match_any_filters": sum(1 for f in compiled if f.match == "any"),
        "stop_on_match_filters": sum(1 for f in compiled if f.stop_on_match),
        "email_only_filters": sum(1 for f in compiled if f.channels),
        "ops_used": sorted({r.op for f in compiled for r in f.rules}),
        "fields_used": sorted({r.field for f in compiled for r in f.rules}),
        "tickets_with_a_match_pct": round(100 * sum(1 for n in per_ticket if n) / tickets, 1),
        "matches_per_ticket_mean": round(sum(per_ticket) / tickets, 3),
        "max_matches_per_ticket": max(per_ticket),
        "seconds": round(best, 3),
        "tickets_per_s": round(tickets / best, 1),
        "filter_evaluations_per_s": round(rate, 1),
        "us_per_ticket": round(best / tickets * 1e6, 1),
        "raw": {
            "seconds": round(raw_best, 3),
            "tickets_per_s": round(tickets / raw_best, 1),
            "filter_evaluations_per_s": round(raw_rate, 1),
            "filters_looked_at": filters_seen,
            "rule_comparisons": comparisons,
            "rule_evaluations_per_s": round(comparisons / raw_best, 1),
        },
        "ratio_vs_raw": round(rate / raw_rate, 3),
        "outcome_mismatches": mismatches,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(filter_rate(), indent=2))
