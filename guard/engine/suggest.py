"""`guard rules suggest`: hosts that behave like trackers in the user's mail but no rule names.

Signals, across every scanned message: beacon-shaped images (tiny or hidden) that no rule
attributes, from hosts that serve no ordinary content image anywhere in the mail, with URLs that
carry per-recipient tokens, seen from several senders. Each suggestion comes with a rule snippet
that loads as it is (rules/README.md), ready to be checked and sourced by a person.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from guard.engine.detect import HEURISTIC_PIXEL
from guard.engine.domains import registrable_domain
from guard.engine.model import Kind, MessageResult

# A per-recipient token: a long run of letters and digits mixing both (ids, hashes, base64).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
MAX_EXAMPLES = 3


def carries_token(url: str) -> bool:
    for run in _TOKEN.findall(url.split("://", 1)[-1].split("/", 1)[-1]):
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return True
    return False


@dataclass
class Suggestion:
    domain: str
    hosts: set[str] = field(default_factory=set)
    messages: int = 0
    senders: set[str] = field(default_factory=set)
    first_party_only: bool = True  # only ever the sender's own domain: a branded ESP alias
    with_token: int = 0
    content_images: int = 0  # ordinary (non-beacon) images from this domain, anywhere
    examples: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        spread = len(self.senders) + 0.5 * self.messages
        token = 1.0 + self.with_token / max(self.messages, 1)
        return spread * token / (1 + self.content_images)

    def common_path(self) -> str:
        """The longest directory prefix the example paths share, e.g. `/open/`."""
        folders = [posixpath.dirname(urlsplit(u).path or "/") or "/" for u in self.examples]
        return posixpath.commonpath(folders).rstrip("/") + "/"

    def rule_snippet(self) -> str:
        ident = re.sub(r"[^a-z0-9]+", "-", self.domain.lower()).strip("-") or "unknown"
        path = self.common_path()
        examples = ", ".join(f'"{u}"' for u in self.examples[:MAX_EXAMPLES])
        near_miss = f"https://{self.domain}/" if path != "/" else "https://unrelated.example/o.gif"
        path_line = f"path = '^{re.escape(path)}'\n" if path != "/" else ""
        return (
            "[[service]]\n"
            f'id = "{ident}"\n'
            f'name = "{self.domain}"\n'
            'category = "analytics"  # adjust: esp, marketing-cloud, sales, ad-network, …\n'
            f'source = "observed: beacon-shaped images in {self.messages} message(s) from '
            f'{len(self.senders)} sender(s), e.g. {self.examples[0]}"\n'
            "\n[[service.rule]]\n"
            'id = "open"\n'
            'kind = "pixel"\n'
            f'hosts = ["{self.domain}", "*.{self.domain}"]\n'
            f"{path_line}"
            f"match = [{examples}]\n"
            f'no_match = ["{near_miss}"]\n'
        )


def suggest(results: Iterable[MessageResult], limit: int | None = 20) -> list[Suggestion]:
    """Unnamed beacon hosts across `results`, most tracker-like first."""
    found: dict[str, Suggestion] = {}
    content: dict[str, int] = {}
    for result in results:
        seen_here: set[str] = set()
        for f in result.findings:
            if not f.host or not f.url:
                continue
            domain = registrable_domain(f.host)
            if f.kind is Kind.REMOTE and "img" in (f.element or ""):
                content[domain] = content.get(domain, 0) + 1
                continue
            if f.kind is not Kind.PIXEL or f.rule != HEURISTIC_PIXEL or f.tracker:
                continue
            s = found.setdefault(domain, Suggestion(domain))
            s.hosts.add(f.host)
            if domain not in seen_here:
                s.messages += 1
                seen_here.add(domain)
            s.senders.add(result.envelope.from_addr)
            s.first_party_only &= domain == result.envelope.domain
            s.with_token += carries_token(f.url)
            if len(s.examples) < MAX_EXAMPLES and f.url not in s.examples:
                s.examples.append(f.url)
    for s in found.values():
        s.content_images = content.get(s.domain, 0)
    ranked = sorted(found.values(), key=lambda s: (-s.score, s.domain))
    return ranked[:limit] if limit is not None else ranked
