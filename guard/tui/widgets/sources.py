"""The sidebar: the local path and every configured account with its folders."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Tree

from guard.tui.data import ImapFolder, LocalSource, Source


class SourceTree(Tree[Source | None]):
    def __init__(self, sources: Sequence[Source], **kwargs: object) -> None:
        super().__init__("Mail", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self._sources = list(sources)

    def on_mount(self) -> None:
        self.set_sources(self._sources)

    def set_sources(self, sources: Sequence[Source]) -> None:
        self._sources = list(sources)
        self.clear()
        locals_ = [s for s in sources if isinstance(s, LocalSource)]
        if locals_:
            node = self.root.add("Local files", data=None, expand=True)
            for local in locals_:
                node.add_leaf(local.path, data=local)
        accounts: dict[str, list[ImapFolder]] = {}
        for s in sources:
            if isinstance(s, ImapFolder):
                accounts.setdefault(s.account.name, []).append(s)
        for name, folders in accounts.items():
            node = self.root.add(name, data=None, expand=True)
            for f in folders:
                node.add_leaf(f.folder, data=f)

    def select_source(self, source: Source | None) -> None:
        """Put the cursor on the node of `source`."""
        for node in self.root.children:
            for leaf in node.children:
                if leaf.data == source:
                    self.move_cursor(leaf)
                    return
