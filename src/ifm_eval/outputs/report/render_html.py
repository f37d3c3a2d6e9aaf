"""HTML renderer: one self-contained file (every image inlined as base64); a stand-in run
carries the "SYNTHETISCHE DATEN / SYNTHETIC DATA" banner and a diagonal watermark."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ifm_eval.outputs.report.content import title_info, title_of
from ifm_eval.outputs.report.context import Context
from ifm_eval.outputs.report.document import Section, inline
from ifm_eval.outputs.style import SYNTHETIC_MARK

CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:62rem;margin:0 auto;padding:3.5rem 1.5rem 3rem;color:#111;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem} h2{border-bottom:1px solid #999;padding-bottom:.2rem;margin-top:2.2rem}
.subtitle{color:#444;margin-top:0}
figure{margin:1.2rem 0} figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.85rem;color:#333}
table{border-collapse:collapse;font-size:.8rem;margin:.6rem 0 1.2rem} caption{text-align:left;font-weight:bold;padding:.3rem 0}
thead th{border-top:2px solid #000;border-bottom:1px solid #000;padding:.2rem .5rem;text-align:left}
tbody td{padding:.15rem .5rem;text-align:right} tbody td:first-child{text-align:left} tbody tr:last-child td{border-bottom:2px solid #000}
pre{background:#f4f4f4;padding:.6rem;font-size:.72rem;overflow-x:auto}
.banner{position:fixed;top:0;left:0;right:0;background:#000;color:#fff;text-align:center;font-weight:bold;padding:.35rem;z-index:10;letter-spacing:.08em}
.watermark{position:fixed;top:45%;left:50%;transform:translate(-50%,-50%) rotate(-30deg);font-size:4.2rem;font-weight:bold;color:rgba(0,0,0,.07);white-space:nowrap;pointer-events:none;z-index:5}
"""

BOLD = ("<strong>", "</strong>")


def render_html(ctx: Context, sections: list[Section]) -> str:
    title, subtitle = title_of(ctx)
    esc = html.escape
    out = [f"<!DOCTYPE html>\n<html lang='{ctx.lang}'><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style></head><body>"]
    if ctx.synthetic:
        out.append(f"<div class='banner'>{SYNTHETIC_MARK}</div><div class='watermark'>{SYNTHETIC_MARK}</div>")
    info = title_info(ctx)
    out.append(f"<h1>{esc(title)}</h1><p class='subtitle'>{esc(subtitle)}</p>" + (f"<p class='subtitle'>{esc(info)}</p>" if info else ""))
    out.append("<nav><ol>" + "".join(f"<li><a href='#{s.key}'>{esc(s.title)}</a></li>" for s in sections) + "</ol></nav>")
    for s in sections:
        out.append(f"<section id='{s.key}'><h2>{esc(s.title)}</h2>")
        for b in s.blocks:
            if b.kind == "p":
                out.append(f"<p>{inline(b.content, esc, BOLD)}</p>")
            elif b.kind == "list":
                out.append("<ul>" + "".join(f"<li>{inline(i, esc, BOLD)}</li>" for i in b.content) + "</ul>")
            elif b.kind == "figure":
                data = base64.b64encode(Path(b.content).read_bytes()).decode()
                out.append(f"<figure><img alt='{esc(b.caption or '')}' src='data:image/png;base64,{data}'><figcaption>{esc(b.caption or '')}</figcaption></figure>")
            elif b.kind == "table":
                df = b.content
                head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
                body = "".join("<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                               for row in df.itertuples(index=False))
                out.append(f"<table><caption>{esc(b.caption or '')}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b.kind == "code":
                cap = f"<p><strong>{esc(b.caption)}</strong></p>" if b.caption else ""
                out.append(f"{cap}<pre>{esc(b.content)}</pre>")
            else:
                raise ValueError(f"unknown block kind {b.kind!r}")
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out)
