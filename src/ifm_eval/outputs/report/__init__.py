"""The final evaluation report: self-contained HTML and PDF (typst), German by default.

Modules:

- :mod:`.strings` + ``strings.yaml``: every German/English text, keyed by id;
- :mod:`.context`: :class:`Context` -- exactly the files the ``report`` rule declares -- and
  lookups on those results (main specification by ``spec.role``, ...);
- :mod:`.methods`: the methods text, generated from the main specifications' metadata;
- :mod:`.content`: the section builders (:data:`SECTION_BUILDERS`);
- :mod:`.reliability`: the chapter on the Monte Carlo check and the detection limits
  (registered with its inputs);
- :mod:`.credibility`, :mod:`.landtag`: the chapters on the credibility diagnostics and on
  the Landtag's questions (registered with their inputs);
- :mod:`.render_html` / :mod:`.render_pdf`: the two renderers of the same sections.

Every number in the text is computed from result files (estimates, tables written by the
tables/descriptives stages, ``truth.json`` on stand-in data); none is typed by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ifm_eval.outputs.report import credibility, landtag, reliability  # noqa: F401  (register their chapters)
from ifm_eval.outputs.report.content import SECTION_BUILDERS, build_sections, register_section
from ifm_eval.outputs.report.context import Context, load_context
from ifm_eval.outputs.report.document import Block, Section
from ifm_eval.outputs.report.render_html import render_html
from ifm_eval.outputs.report.render_pdf import render_pages_png, render_pdf, render_typst

log = logging.getLogger(__name__)

__all__ = ["SECTION_BUILDERS", "Block", "Context", "Section", "build_report", "build_sections", "load_context",
           "register_section", "render_html", "render_pages_png", "render_pdf", "render_typst"]


def build_report(ctx: Context, html_path: Path, pdf_path: Path, pages_png: Path | None = None) -> tuple[Path, Path]:
    """Write the report of ``ctx`` (:func:`load_context`) as HTML and PDF."""
    sections = build_sections(ctx)
    html_path, pdf_path = Path(html_path), Path(pdf_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(ctx, sections), encoding="utf-8")
    pdf_path.write_bytes(render_pdf(ctx, sections))
    if pages_png is not None:
        render_pages_png(ctx, sections, pages_png)
    log.info("report: %d sections -> %s, %s", len(sections), html_path, pdf_path)
    return html_path, pdf_path
