"""The report's document model: sections of blocks (paragraphs, lists, figures, tables,
code), rendered by :mod:`.render_html` and :mod:`.render_pdf`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Block:
    kind: str  # "p" | "list" | "figure" | "table" | "code"
    content: Any
    caption: str | None = None


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.blocks.append(Block("p", text))
        return self

    def items(self, items: list[str]) -> Section:
        self.blocks.append(Block("list", items))
        return self

    def figure(self, path: Path, caption: str) -> Section:
        """A declared figure of the report; missing is an error (the rule declares it)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"report section {self.key!r}: figure {path} does not exist "
                                    "(every figure of the report is a declared input)")
        self.blocks.append(Block("figure", Path(path), caption))
        return self

    def table(self, df: pd.DataFrame, caption: str) -> Section:
        self.blocks.append(Block("table", df, caption))
        return self

    def code(self, text: str, caption: str | None = None) -> Section:
        self.blocks.append(Block("code", text, caption))
        return self


def inline(text: str, esc, bold: tuple[str, str]) -> str:
    """``**bold**`` markup of a paragraph, the rest escaped with ``esc``."""
    parts = str(text).split("**")
    return "".join(bold[0] + esc(p) + bold[1] if i % 2 else esc(p) for i, p in enumerate(parts))
