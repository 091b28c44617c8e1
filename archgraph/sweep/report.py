"""The sweep's HTML report: one self-contained file (inline CSS, SVG and JS; nothing fetched).

The Pareto front is drawn as an SVG scatter of the first two objectives: every ok point, the
front's points filled (and joined when there are only two objectives); a point's settings and
objective values show on hover, and clicking it opens its emitted spec. Then a table of every
point, sortable by any column (click a header), with a link to each point's spec.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from archgraph.sweep.metrics import NUMERIC_COLUMNS, TIMING_COLUMNS

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 440, 90, 20, 20, 60

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0 24px 40px;color:#222}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd}
ul{padding-left:18px}svg text{font:11px "DejaVu Sans Mono",monospace}
svg .axis{stroke:#888}svg .grid{stroke:#eee}svg .front{fill:none;stroke:#0a58ca;stroke-width:1.5}
svg circle{fill:#bbb;stroke:#666}svg circle.on-front{fill:#0a58ca;stroke:#063b8a}
table{border-collapse:collapse;font-size:12.5px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0;cursor:pointer;user-select:none;text-align:left}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.err{white-space:pre;color:#a40000}
tr.front td{background:#e8f0ff}
"""

_JS = """
(function(){
  function val(td){var v=td.getAttribute('data-v');if(v===null||v===''){return null;}
    var f=parseFloat(v);return isNaN(f)?v:f;}
  document.querySelectorAll('table.sortable').forEach(function(table){
    var ths=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,col){th.addEventListener('click',function(){
      var dir=th.classList.contains('asc')?'desc':'asc',s=dir==='asc'?1:-1;
      Array.prototype.forEach.call(ths,function(h){h.classList.remove('asc','desc');});
      th.classList.add(dir);
      var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=val(a.cells[col]),y=val(b.cells[col]);
        if(x===null||y===null){return (x===null)-(y===null);}
        if(typeof x==='number'&&typeof y==='number'){return s*(x-y);}
        return s*String(x).localeCompare(String(y));});
      rows.forEach(function(r){body.appendChild(r);});});});});
})();
"""


@dataclass(frozen=True)
class ReportInput:
    name: str
    description: str
    base: str
    fixed: str  # the fixed settings, as text
    settings: list[str]  # setting columns
    metrics: list[str]  # metric columns
    objectives: Mapping[str, str]
    rows: Sequence[Mapping[str, str]]
    front: Sequence[int]  # indices into rows
    notes: Sequence[str]  # how it ran: engine, latency isolation, metric definitions


def _fmt(value: str) -> str:
    try:
        x = float(value)
    except ValueError:
        return value
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _label(row: Mapping[str, str], settings: Sequence[str], metrics: Sequence[str]) -> str:
    parts = [f"point {row.get('point', '?')}"]
    parts += [f"{c} = {row.get(c, '') or '(none)'}" for c in settings]
    parts += [f"{c} = {_fmt(row.get(c, ''))}" for c in metrics]
    return "\n".join(parts)


def scatter(data: ReportInput) -> str:
    """The first two objectives of every ok point as an SVG scatter, the front's points filled."""
    xcol, ycol = list(data.objectives)[:2]
    front = set(data.front)
    pts = []
    for i, r in enumerate(data.rows):
        if r.get("status") == "ok" and r.get(xcol, "") != "" and r.get(ycol, "") != "":
            pts.append((i, float(r[xcol]), float(r[ycol])))
    if not pts:
        return "<p>No point finished with both objectives.</p>"
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or abs(x0) or 1.0, (y1 - y0) or abs(y0) or 1.0
    x0, x1, y0, y1 = x0 - 0.05 * dx, x1 + 0.05 * dx, y0 - 0.05 * dy, y1 + 0.05 * dy

    def sx(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R)

    def sy(y: float) -> float:
        return H - PAD_B - (y - y0) / (y1 - y0) * (H - PAD_T - PAD_B)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" id="front">']
    for t in _ticks(x0, x1):
        out.append(
            f'<line class="grid" x1="{sx(t):.1f}" y1="{PAD_T}" x2="{sx(t):.1f}" y2="{H - PAD_B}"/>'
        )
        out.append(
            f'<text x="{sx(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{_fmt(repr(t))}</text>'
        )
    for t in _ticks(y0, y1):
        out.append(
            f'<line class="grid" x1="{PAD_L}" y1="{sy(t):.1f}" x2="{W - PAD_R}" y2="{sy(t):.1f}"/>'
        )
        out.append(
            f'<text x="{PAD_L - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(repr(t))}</text>'
        )
    out.append(
        f'<line class="axis" x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}"/>'
    )
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}"/>')
    out.append(
        f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 14}" text-anchor="middle">'
        f"{html.escape(xcol)} ({data.objectives[xcol]})</text>"
    )
    out.append(
        f'<text transform="translate(16,{(PAD_T + H - PAD_B) / 2}) rotate(-90)" '
        f'text-anchor="middle">{html.escape(ycol)} ({data.objectives[ycol]})</text>'
    )
    on_front = sorted((x, y) for i, x, y in pts if i in front)
    if len(on_front) > 1 and len(data.objectives) == 2:  # with more, the front is not a curve here
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in on_front)
        out.append(f'<polyline class="front" points="{path}"/>')
    for i, x, y in pts:
        r = data.rows[i]
        title = html.escape(_label(r, data.settings, list(data.objectives)))
        klass = ' class="on-front"' if i in front else ""
        circle = f'<circle{klass} cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5"><title>{title}</title></circle>'
        spec = r.get("spec", "")
        out.append(f'<a href="{html.escape(spec)}">{circle}</a>' if spec else circle)
    out.append("</svg>")
    return "".join(out)


def _cell(column: str, value: str) -> str:
    if column == "spec" and value:
        v = html.escape(value)
        return f'<td data-v="{v}"><a href="{v}">{v}</a></td>'
    if column == "error":
        return f'<td class="err" data-v="{html.escape(value)}">{html.escape(value)}</td>'
    if column in NUMERIC_COLUMNS or column in ("point", "seconds"):
        return f'<td class="num" data-v="{html.escape(value)}">{html.escape(_fmt(value)) if value else ""}</td>'
    return f'<td data-v="{html.escape(value)}">{html.escape(value)}</td>'


def table(data: ReportInput) -> str:
    columns = [
        "point",
        "status",
        "pareto",
        *data.settings,
        *data.metrics,
        "seconds",
        "spec",
        "error",
    ]
    front = set(data.front)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, r in enumerate(data.rows):
        row = {**r, "pareto": "yes" if i in front else ""}
        cells = "".join(_cell(c, row.get(c, "")) for c in columns)
        klass = ' class="front"' if i in front else ""
        body.append(f"<tr{klass}>{cells}</tr>")
    return (
        f'<table id="points" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def render(data: ReportInput) -> str:
    ok = sum(r.get("status") == "ok" for r in data.rows)
    objectives = ", ".join(f"{c} ({d})" for c, d in data.objectives.items())
    items = [
        f"base: {data.base}; fixed settings: {data.fixed}",
        f"{len(data.rows)} points: {ok} ok, {len(data.rows) - ok} failed; "
        f"{len(data.front)} on the Pareto front of {objectives}",
        *data.notes,
        "timing columns (differ from run to run): "
        + ", ".join(c for c in ["seconds", *data.metrics] if c in TIMING_COLUMNS),
    ]
    summary = "".join(f"<li>{html.escape(s)}</li>" for s in items)
    axes = " vs ".join(list(data.objectives)[:2][::-1])
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(data.name)}: sweep</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(data.name)}</h1><p>{html.escape(data.description)}</p>"
        f"<ul>{summary}</ul>"
        f"<h2>Pareto front ({html.escape(axes)})</h2>"
        "<p>Filled points are on the front (over all objectives); hover a point for its "
        "settings, click it for its spec.</p>"
        f"{scatter(data)}<h2>Points</h2>{table(data)}<script>{_JS}</script></body></html>\n"
    )
