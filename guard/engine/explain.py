"""`guard explain`: every finding of a message with the rule and the evidence that produced it."""

from __future__ import annotations

from guard.engine.detect import BUILTIN_REMOTE, HEURISTIC_PIXEL
from guard.engine.model import Finding, Kind, MessageResult
from guard.engine.ruleset import Rule, RuleSet


def _rule_shape(rule: Rule) -> str:
    parts = []
    if rule.hosts:
        shown = ", ".join(rule.hosts[:4]) + (" …" if len(rule.hosts) > 4 else "")
        parts.append(f"host {shown}")
    else:
        parts.append("any host")
    if rule.path is not None:
        parts.append(f"path /{rule.path.pattern}/")
    if rule.query is not None:
        parts.append(f"query /{rule.query.pattern}/")
    if rule.params or rule.param_prefixes:
        names = sorted(rule.params) + [f"{p}*" for p in rule.param_prefixes]
        parts.append(f"parameters {', '.join(names[:6])}{' …' if len(names) > 6 else ''}")
    if rule.header:
        parts.append(f"header {rule.header}")
    return ", ".join(parts)


def _why(finding: Finding, rule: Rule | None) -> str:
    if finding.rule == HEURISTIC_PIXEL:
        return (
            "a remote image shaped like a beacon — tiny or hidden — that no rule names; "
            "a client fetches it on opening, which tells the sender"
        )
    if finding.rule == BUILTIN_REMOTE:
        return "a client loads it when displaying the message (no rule names its host)"
    if rule is None:
        return "rule not in the current rule set"
    what = {
        "pixel": "a known open-tracking URL",
        "link": "a known click-tracking / redirect wrapper",
        "param": "tracking parameters a rule names",
        "receipt": "a read-receipt request header",
        "host": "a host that belongs to the service",
        "sender": "a header naming the service the message was sent through",
        "spacer": "a known spacer image (layout, not tracking)",
    }.get(rule.kind, rule.kind)
    if rule.tracking_only:
        what = "a host that serves only tracking (every load a beacon, every link a wrapper)"
    return f"{what}: {_rule_shape(rule)}"


def explain_finding(finding: Finding, rules: RuleSet) -> list[str]:
    by_id = {r.id: r for r in rules.rules}
    rule = by_id.get(finding.rule)
    who = finding.tracker or "unknown tracker"
    head = f"{finding.kind.value:<8} {who}"
    if finding.category:
        head += f" ({finding.category})"
    lines = [f"  {head}, {finding.confidence.value}"]
    if finding.kind is Kind.RECEIPT:
        lines.append(f"    header:      {finding.header}: {finding.value or ''}")
    elif finding.url:
        lines.append(f"    url:         {finding.url}")
    if finding.kind is Kind.LINK:
        target = finding.destination or "(opaque: the target is not in the URL; not followed)"
        lines.append(f"    destination: {target}")
    if finding.params:
        lines.append(f"    parameters:  {', '.join(finding.params)}")
    if finding.element:
        lines.append(f"    found in:    {finding.element}")
    if finding.host:
        party = finding.party.value if finding.party else "?"
        lines.append(f"    host:        {finding.host} ({party} party)")
    if finding.leak:
        lines.append(f"    leaks:       your address, {finding.leak}")
    lines.append(f"    rule:        {finding.rule}{f'  ({rule.file})' if rule else ''}")
    lines.append(f"    why:         {_why(finding, rule)}")
    if rule is not None:
        lines.append(f"    source:      {rule.source}")
    via = by_id.get(finding.via) if finding.via else None
    if finding.via:
        header = f"the {via.header} header" if via else "a header"
        lines.append(
            f"    named by:    {finding.via}: {header} shows the message was sent through "
            f"{finding.tracker}, and the beacon is on the sender's own domain"
        )
        if via is not None:
            lines.append(f"    its source:  {via.source}")
    return lines


def explain(result: MessageResult, rules: RuleSet) -> str:
    env = result.envelope
    lines = [
        result.source,
        f"  from {env.from_addr or '(no sender)'}"
        + (f" ({env.domain})" if env.domain else "")
        + f": {env.subject}",
    ]
    if result.error:
        lines.append(f"  error: {result.error}")
        return "\n".join(lines)
    if result.esp is not None:
        lines.append(f"  sent through {result.esp.name}: {'; '.join(result.esp.evidence)}")
    if not result.findings:
        lines.append("  nothing: no tracking and no remote content")
    order = {Kind.RECEIPT: 0, Kind.PIXEL: 1, Kind.LINK: 2, Kind.PARAM: 3, Kind.REMOTE: 4}
    for finding in sorted(result.findings, key=lambda f: order[f.kind]):
        lines.extend(explain_finding(finding, rules))
    return "\n".join(lines)
