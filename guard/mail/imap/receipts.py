"""Read-receipt requests: when a message needs no rewrite, only its receipt declined.

A message whose only finding is a receipt request (`receipt_only`) is not rewritten when the
folder keeps custom keywords: the original gets `$MDNSent` (a mail client then never sends the
receipt) and stays in place (decline-only). Where the server keeps no keywords the receipt headers
are removed by a rewrite like any other finding; a cleaned copy of a message that asked for a
receipt carries `$MDNSent` too (guard.mail.imap.append).
"""

from __future__ import annotations

from guard.mail.imap.common import KW_MDNSENT, CleanOutcome, FolderPass, Msg
from guard.mail.imap.steps import ImapActions


def receipt_only(result: CleanOutcome) -> bool:
    """Only a receipt request to handle: nothing but receipt headers would be removed."""
    if not result.receipt_requested:
        return False
    return all(n == 0 for kind, n in result.removed.items() if "receipt" not in kind.lower())


class ReceiptStep(ImapActions):
    """Cleaning's decline-only step."""

    def _decline(self, ctx: FolderPass, declines: list[Msg]) -> None:
        """STORE `$MDNSent` on originals that only asked for a receipt (no rewrite, no copy)."""
        self.call(
            f"setting $MDNSent in {ctx.name!r}",
            self.client.add_flags,
            [m.uid for m in declines],
            [KW_MDNSENT],
            True,
        )
