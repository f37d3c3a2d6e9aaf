"""typst/PDF renderer: the same sections as typst source, compiled with ``typst.compile``
in a temporary directory holding copies of the figures. A stand-in run carries the mark on
every page (header and diagonal background)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from ifm_eval.outputs.report.content import title_info, title_of
from ifm_eval.outputs.report.context import Context
from ifm_eval.outputs.report.document import Section, inline
from ifm_eval.outputs.style import SYNTHETIC_MARK

_TYP_SPECIAL = set("\\*_`$#@<>[]~/\"'=-+")


def typ_escape(text: str) -> str:
    return "".join("\\" + c if c in _TYP_SPECIAL else c for c in str(text)).replace("\n", " ")


def _typ_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_typst(ctx: Context, sections: list[Section], images: dict[Path, str]) -> str:
    title, subtitle = title_of(ctx)
    mark = _typ_str(SYNTHETIC_MARK)
    lines = [
        f'#set document(title: {_typ_str(title)}, date: none)',
        f'#set text(lang: "{ctx.lang}", size: 10pt, font: ("Libertinus Serif", "DejaVu Serif"))',
        '#set par(justify: true)',
        '#set heading(numbering: "1.")',
        '#show heading: set block(above: 1.4em, below: 0.8em)',
        '#show figure.caption: set text(size: 8.5pt)',
    ]
    page = ['paper: "a4"', "margin: (x: 2.2cm, top: 2.6cm, bottom: 2.2cm)",
            'footer: context align(center, text(8pt)[#counter(page).display("1 / 1", both: true)])']
    if ctx.synthetic:
        page.append(f"header: align(center, box(stroke: 0.8pt, inset: 4pt, text(8pt, weight: \"bold\", {mark})))")
        page.append('background: rotate(-35deg, align(center, text(42pt, fill: luma(88%), weight: "bold")[SYNTHETISCHE DATEN \\ SYNTHETIC DATA]))')
    lines.append("#set page(" + ", ".join(page) + ")")
    title_c = typ_escape(title).replace("Baden\\-Württemberg", "#box[Baden\\-Württemberg]")  # never split the name
    lines.append(f'#align(center, block(width: 100%)[#set par(justify: false)\n#text(18pt, weight: "bold", hyphenate: false)[{title_c}] '
                 f'\\ #v(0.3em) #text(12pt, {_typ_str(subtitle)})])')
    info = title_info(ctx)
    if info:
        lines.append(f'#align(center, text(9pt)[{typ_escape(info)}])')
    if ctx.synthetic:
        lines.append(f'#align(center, box(fill: black, inset: 6pt, text(fill: white, weight: "bold", {mark})))')
    lines.append('#v(0.6em)\n#outline(depth: 1, title: ' + _typ_str(ctx.s("contents")) + ')\n#pagebreak()')
    for s in sections:
        lines.append(f"= {typ_escape(s.title)}")
        for b in s.blocks:
            if b.kind == "p":
                lines.append(inline(b.content, typ_escape, ("*", "*")) + "\n")
            elif b.kind == "list":
                lines += [f"- {inline(i, typ_escape, ('*', '*'))}" for i in b.content]
                lines.append("")
            elif b.kind == "figure":
                lines.append(f'#figure(image("{images.get(Path(b.content), Path(b.content).name)}", width: 92%), caption: [{typ_escape(b.caption or "")}])')
            elif b.kind == "table":
                df = b.content
                ncol = len(df.columns)
                cells = ", ".join(f"[{typ_escape('' if pd.isna(v) else str(v))}]" for row in df.itertuples(index=False) for v in row)
                head = ", ".join(f"[*{typ_escape(str(c))}*]" for c in df.columns)
                align = "(" + ", ".join(["left"] + ["right"] * (ncol - 1)) + ",)" if ncol > 1 else "left"
                size = "7pt" if ncol > 6 or len(df) > 25 else "8pt"
                lines.append(
                    f"#figure(kind: table, caption: [{typ_escape(b.caption or '')}], text({size}, table(columns: {ncol}, align: {align}, "
                    f"stroke: none, inset: (x: 4pt, y: 2.5pt), table.hline(stroke: 1pt), table.header({head}), table.hline(stroke: 0.5pt), "
                    f"{cells}{', ' if cells else ''}table.hline(stroke: 1pt))))")
            elif b.kind == "code":
                if b.caption:
                    lines.append(f"*{typ_escape(b.caption)}*")
                lines.append(f"#text(7pt, raw({_typ_str(b.content)}, block: true))")
            else:
                raise ValueError(f"unknown block kind {b.kind!r}")
    return "\n".join(lines) + "\n"


def compile_typst(ctx: Context, sections: list[Section], fmt: str = "pdf", ppi: float | None = None) -> bytes | list[bytes]:
    """Compile the typst source in a temporary directory holding copies of the figures."""
    import typst

    with tempfile.TemporaryDirectory(prefix="ifm_report_") as tmp:
        tmp = Path(tmp)
        images: dict[Path, str] = {}
        (tmp / "img").mkdir()
        for s in sections:
            for b in s.blocks:
                if b.kind == "figure" and Path(b.content) not in images:
                    name = f"img/{len(images):03d}_{Path(b.content).name}"
                    shutil.copyfile(b.content, tmp / name)
                    images[Path(b.content)] = name
        (tmp / "report.typ").write_text(render_typst(ctx, sections, images), encoding="utf-8")
        if fmt == "pdf":
            return typst.compile(str(tmp / "report.typ"), root=str(tmp))
        return typst.compile(str(tmp / "report.typ"), root=str(tmp), format="png", ppi=ppi or 60)


def render_pdf(ctx: Context, sections: list[Section]) -> bytes:
    return compile_typst(ctx, sections, "pdf")


def render_pages_png(ctx: Context, sections: list[Section], out_dir: Path, ppi: float = 60) -> list[Path]:
    """Every PDF page as PNG (same typst source), for visual checks."""
    pages = compile_typst(ctx, sections, "png", ppi)
    pages = [pages] if isinstance(pages, bytes) else pages
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(pages, 1):
        p = out_dir / f"page_{i:02d}.png"
        p.write_bytes(data)
        paths.append(p)
    return paths
