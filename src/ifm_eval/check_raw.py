"""``ifm-eval check-raw``: check a delivery against the file contract before a run.

For every raw source of :data:`ifm_eval.sources.SOURCES` the check reports, per file:
found (and size), readable, schema (the reader's validation: passes, or the error with file,
line and column), the conventions detected (encoding, separator, decimal mark, header
line, line breaks, Stata release ...), the coverage of the frame's municipalities and of
the panel months, and the repairs the run will apply (every logged decision of the
reader: dropped totals rows, recoded decimal marks, months read from dates ...).

Nothing here parses a file: the check runs the pipeline's own readers
(:func:`ifm_eval.ingest.run.ingest_source` for the administrative files,
:func:`ifm_eval.ingest.survey_read.read_wave` for the survey waves) on each file and reads
their lineage records, so what it reports is exactly what the run will do. The report is
Markdown (``data/processed/checks/raw_delivery.md`` by the ``check_raw`` rule; it names
municipalities, so it stays under ``data/``) and is printed to standard output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.lineage import Lineage
from ifm_eval.months import panel_months, panel_window
from ifm_eval.sources import SOURCES
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

#: lineage steps that describe what was found (not a change)
CONVENTION_STEPS = ("conventions",)
#: lineage actions that are routine steps, not repairs
ROUTINE_ACTIONS = ("read", "aggregate")
#: lineage steps that are routine (the readers' own coverage summary is shown as coverage)
ROUTINE_STEPS = ("coverage",)
#: municipalities / months listed by name in the report before "... and n more"
LIST_LIMIT = 40

#: coverage errors of the monthly readers name the config key (ingest.min_*_coverage)
COVERAGE_MARK = "below ingest.min_"
FAILING = ("missing", "unreadable", "schema error", "coverage error")
_UNREADABLE = ("file not found", "file is empty", "NUL bytes", "neither UTF-8 nor cp1252",
               "not valid UTF-8 (mixed", "not a readable .xlsx", "no header line", "cannot parse",
               "wrong file type", "cannot read", "truncated file", "empty file",
               "survey file not found", "ends without a line break")


@dataclass
class FileReport:
    """What the check found for one raw source."""

    key: str
    label: str
    contract: str                      # path relative to the raw directory (contract)
    path: Path | None                  # the file checked (None: not delivered)
    found: bool = False
    size: int = 0
    readable: bool | None = None
    schema_ok: bool | None = None
    error: str | None = None
    conventions: list[str] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.found:
            return "missing"
        if self.error:
            if not self.readable:
                return "unreadable"
            return "coverage error" if COVERAGE_MARK in self.error else "schema error"
        return "ok, with repairs" if self.repairs else "ok"


def _names(ags: list[str], frame: pd.DataFrame, limit: int = LIST_LIMIT) -> str:
    nm = frame.set_index("ags")["name"] if "name" in frame.columns else pd.Series(dtype=str)
    shown = ", ".join(f"{a} {nm.get(a, '')}".strip() for a in ags[:limit])
    return shown + (f" ... and {len(ags) - limit} more" if len(ags) > limit else "")


def _coverage_admin(cfg: dict[str, Any], key: str, out: dict[str, pd.DataFrame],
                    frame: pd.DataFrame) -> list[str]:
    frame_ags = sorted(frame["ags"].astype(str))
    months = panel_months(cfg)
    window = f"{cfg['panel']['start']}..{cfg['panel']['end']}"
    lines: list[str] = []
    for name, df in out.items():
        if "ags" not in df.columns:
            continue
        d = df
        if key == "case_management":  # zero-filled grid: count where persons are in AU
            d = df.loc[df["refugees"] > 0]
            what = "with persons in AU in the export"
        elif key == "funding_applications" and name == "funding_verbaende":
            continue
        else:
            what = "with rows"
        have = set(d["ags"].astype(str))
        missing = [a for a in frame_ags if a not in have]
        lines.append(f"{name}: {len(frame_ags) - len(missing)} of {len(frame_ags)} municipalities "
                     f"of the frame {what}" + (f"; not in the file: {_names(missing, frame)}"
                                               if missing and len(missing) < len(frame_ags) else ""))
        if "month" in d.columns:
            have_m = set(pd.DatetimeIndex(pd.to_datetime(d["month"])).unique())
            miss_m = [m for m in months if m not in have_m]
            lines.append(f"{name}: {len(months) - len(miss_m)} of {len(months)} months of {window}"
                         + (f"; without any row: {', '.join(f'{m:%Y-%m}' for m in miss_m[:LIST_LIMIT])}"
                            if miss_m else ""))
        elif "quarter" in d.columns and len(d):
            lines.append(f"{name}: quarters {d['quarter'].min()} .. {d['quarter'].max()}, "
                         f"{d['quarter'].nunique()} distinct")
        elif "beginn" in d.columns and len(d):
            lines.append(f"{name}: {d['stellen_id'].nunique()} posts starting "
                         f"{d['beginn'].min():%d.%m.%Y} .. {d['beginn'].max():%d.%m.%Y}")
    return lines


def _coverage_survey(wd: Any, frame: pd.DataFrame, verbaende: pd.DataFrame | None) -> list[str]:
    from ifm_eval.ingest.keys import match_keys
    from ifm_eval.ingest.survey_read import load_codebook

    spec = load_codebook()["waves"][wd.wave]
    keys = wd.frame[spec["key"]]
    mk = match_keys(keys, frame, verbaende=verbaende)
    first = mk.drop_duplicates("input_row")
    st = first["status"].value_counts().to_dict()
    ags = set(mk.loc[mk["ags"].notna(), "ags"].astype(str))
    return [f"{len(wd.frame)} rows; key column {spec['key']!r}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(st.items()))
            + f"; {len(ags)} of {len(frame)} municipalities reached"
            + ("" if verbaende is not None else " (Verband names not matched: funding file not read)")]


def _records(lineage: Lineage) -> tuple[list[str], list[str]]:
    conv, rep = [], []
    for r in lineage.records:
        if r.step in CONVENTION_STEPS and r.action == "read":
            conv.append(r.reason)
        elif r.action not in ROUTINE_ACTIONS and r.step not in ROUTINE_STEPS:
            rows = f" ({r.rows_in} -> {r.rows_out} rows)" if r.rows_in != r.rows_out else ""
            rep.append(f"{r.step} [{r.action}]: {r.reason}{rows}")
    return conv, rep


def check_source(cfg: dict[str, Any], key: str, path: Path | None, frame: pd.DataFrame,
                 verbaende: pd.DataFrame | None = None) -> tuple[FileReport, Any]:
    """Check one raw source with the pipeline's reader. Returns the report and what the
    reader returned (frames or the survey wave; None on error)."""
    from ifm_eval.ingest.readers import IngestError
    from ifm_eval.ingest.run import ingest_source
    from ifm_eval.ingest.survey_read import SurveyError, read_wave

    src = SOURCES[key]
    rep = FileReport(key, src.label, src.path, path)
    if path is None or not Path(path).is_file():
        rep.error = "file not found" + (f" ({path})" if path is not None else "")
        return rep, None
    path = Path(path)
    rep.found, rep.size = True, path.stat().st_size
    lineage = Lineage(f"check_raw_{key}")
    result: Any = None
    try:
        if src.kind == "survey":
            wd = read_wave(path, src.wave)
            rep.conventions = list(wd.conventions)
            rep.repairs = [f"decision: {d}" for d in wd.decisions]
            rep.coverage = _coverage_survey(wd, frame, verbaende)
            result = wd
        else:
            result = ingest_source(cfg, key, path, frame, lineage)
            rep.coverage = _coverage_admin(cfg, key, result, frame)
        rep.readable = rep.schema_ok = True
    except (IngestError, SurveyError) as exc:
        msg = str(exc)
        rep.error = msg
        rep.readable = not any(k in msg for k in _UNREADABLE)
        rep.schema_ok = (COVERAGE_MARK in msg) if rep.readable else None
    if src.kind != "survey":
        rep.conventions, rep.repairs = _records(lineage)
    return rep, result


def check_delivery(cfg: dict[str, Any], files: dict[str, Path | None],
                   frame: pd.DataFrame) -> list[FileReport]:
    """Check every source of the registry (``files``: source key -> path, or None / absent
    when not delivered), the funding file first (its Verbände help to match survey keys)."""
    order = ["funding_applications", *[k for k in SOURCES if k != "funding_applications"]]
    reports: dict[str, FileReport] = {}
    verbaende = None
    for key in order:
        rep, result = check_source(cfg, key, files.get(key), frame, verbaende)
        if key == "funding_applications" and result is not None:
            m = result["funding_members"]
            verbaende = m[["verband_id", "verband_name", "ags"]].astype({"ags": str})
        reports[key] = rep
        log.info("check-raw %s: %s", key, rep.status)
    return [reports[k] for k in SOURCES]


def _yes(v: bool | None) -> str:
    return "yes" if v else ("no" if v is False else "–")


def raw_root(files: dict[str, Path | None]) -> Path | None:
    """The delivery's directory, from the files given (``<root>/<contract path>``)."""
    for key, p in files.items():
        if p is not None and Path(p).as_posix().endswith("/" + SOURCES[key].path):
            return Path(Path(p).as_posix()[: -len(SOURCES[key].path) - 1])
    return None


def render(reports: list[FileReport], cfg: dict[str, Any], n_frame: int,
           raw_dir: Path | None = None) -> str:
    """The report as Markdown: a summary table, then one section per file."""
    start, end = panel_window(cfg)
    src = cfg["data"]["source"]
    where = f"raw directory `{raw_dir}`" if raw_dir is not None else "no file given"
    lines = ["# Raw delivery check", "",
             f"Contract: `data/raw/README.md`. Data source `{src}`, {where}; "
             f"frame {n_frame} municipalities; panel window {start:%Y-%m}..{end:%Y-%m}. "
             "Each file was read by the pipeline's own reader: the repairs listed are the "
             "ones the run will apply.", ""]
    n_bad = sum(r.status in FAILING for r in reports)
    lines += [f"**{len(reports) - n_bad} of {len(reports)} files pass**"
              + (f"; {n_bad} need attention before a run." if n_bad else "."), ""]
    lines += ["| file | found | readable | schema | repairs | status |",
              "|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| `{r.contract}` | {_yes(r.found)} | {_yes(r.readable)} | "
                     f"{_yes(r.schema_ok)} | {len(r.repairs)} | {r.status} |")
    for r in reports:
        lines += ["", f"## `{r.contract}` — {r.label}", ""]
        if not r.found:
            at = r.path or (raw_dir / r.contract if raw_dir is not None else r.contract)
            lines += [f"- **found: no** — expected at `{at}` (see data/raw/README.md)"]
            continue
        lines += [f"- found: yes (`{r.path}`, {r.size:,} bytes)",
                  f"- readable: {_yes(r.readable)}",
                  f"- schema: {'passes' if r.schema_ok else ('–' if r.schema_ok is None else 'FAILS')}"]
        if r.error:
            lines.append(f"- **error:** {r.error}")
        if r.conventions:
            lines.append("- conventions detected:")
            lines += [f"  - {c}" for c in r.conventions]
        if r.coverage:
            lines.append("- coverage:")
            lines += [f"  - {c}" for c in r.coverage]
        if r.repairs:
            lines.append(f"- repairs that will be applied ({len(r.repairs)}):")
            lines += [f"  - {c}" for c in r.repairs]
        elif r.error is None:
            lines.append("- repairs that will be applied: none")
    return "\n".join(lines) + "\n"


def run(cfg: dict[str, Any], io: StageIO, strict: bool = False) -> list[FileReport]:
    """The ``check_raw`` job. Inputs: ``frame`` and ``raw_<key>`` for every delivered source
    (:data:`~ifm_eval.sources.SOURCES`; a source not given is reported as missing, expected
    beside the given ones: the stage knows no layout). Output:
    ``report`` (Markdown, also printed). With ``strict``, a missing or failing file is an
    error after the report is written."""
    from ifm_eval.frame import load_frame

    io.require(inputs=("frame",), outputs=("report",),
               optional_inputs=tuple(f"raw_{k}" for k in SOURCES))
    frame = load_frame(io.input("frame"))
    files = {k: io.optional_input(f"raw_{k}") for k in SOURCES}
    reports = check_delivery(cfg, files, frame)
    text = render(reports, cfg, len(frame), raw_root(files))
    out = io.output("report")
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    bad = [r.key for r in reports if r.status in FAILING]
    log.info("check-raw: %d of %d files pass; report %s", len(reports) - len(bad), len(reports), out)
    if strict and bad:
        raise RuntimeError(f"check-raw: {len(bad)} file(s) missing or failing: {bad} (see {out})")
    return reports
