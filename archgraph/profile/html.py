"""The HTML report: one self-contained file (inline CSS, SVG and JS; nothing fetched), with the
graph drawn as a layered DAG whose nodes are colored by their share of the latency, and a node
table sortable by any column (click a header; `#sort=COLUMN` or `#sort=COLUMN&dir=asc` in the
URL sorts on load). Clicking a row highlights its node in the drawing, and the reverse."""

from __future__ import annotations

import html
from typing import Any

from archgraph.profile.layout import Layout, layout
from archgraph.profile.report import (
    COMPARISON_COLUMNS,
    Profile,
    human,
    human_bytes,
    summary_lines,
)

LABEL_CHARS = 25  # of 11px monospace in a layout.NODE_W box

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0 24px 40px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h1 small{font-weight:normal;color:#666;font-size:14px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
ul.summary{padding-left:18px;margin:6px 0}ul.summary li{margin:2px 0}
.warn{color:#a40000;font-weight:600}
.graph-wrap{overflow:auto;max-height:80vh;border:1px solid #ddd;background:#fcfcfc}
svg text{font:11px "DejaVu Sans Mono",monospace;pointer-events:none}
svg .edge{fill:none;stroke:#8a8a8a;stroke-width:1}
svg .node-shape{stroke:#555;stroke-width:1;cursor:pointer}
svg .node-shape.hl{stroke:#0a58ca;stroke-width:3}
.legend span{display:inline-block;width:26px;height:12px;vertical-align:middle;border:1px solid #999}
table{border-collapse:collapse;font-size:12.5px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0;cursor:pointer;user-select:none;text-align:left}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hl td{background:#dbe9ff}
"""

_JS = """
(function(){
  function cellValue(td){var v=td.getAttribute('data-v');
    if(v===null||v===''){return td.classList.contains('num')?-Infinity:td.textContent;}
    var f=parseFloat(v);return isNaN(f)?v:f;}
  function sortTable(table,key,dir){
    var ths=table.tHead.rows[0].cells,col=-1;
    for(var i=0;i<ths.length;i++){ths[i].classList.remove('asc','desc');
      if(ths[i].getAttribute('data-key')===key){col=i;}}
    if(col<0){return;}
    ths[col].classList.add(dir);
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows),s=dir==='asc'?1:-1;
    rows.sort(function(a,b){var x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
      if(typeof x==='number'&&typeof y==='number'){return s*(x-y);}
      return s*String(x).localeCompare(String(y));});
    rows.forEach(function(r){body.appendChild(r);});
    table.setAttribute('data-sorted',key+' '+dir);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.tHead.rows[0].querySelectorAll('th').forEach(function(th){
      th.addEventListener('click',function(){
        var dir=th.classList.contains('desc')?'asc':'desc';sortTable(table,th.getAttribute('data-key'),dir);});});});
  var params={};location.hash.replace(/^#/,'').split('&').forEach(function(p){
    var kv=p.split('=');if(kv[0]){params[kv[0]]=decodeURIComponent(kv[1]||'');}});
  if(params.sort){sortTable(document.getElementById('nodes'),params.sort,params.dir==='asc'?'asc':'desc');}
  function highlight(id,scroll){
    document.querySelectorAll('.hl').forEach(function(e){e.classList.remove('hl');});
    document.querySelectorAll('[data-id]').forEach(function(e){
      if(e.getAttribute('data-id')===id){e.classList.add('hl');if(scroll==='node'){e.scrollIntoView({block:'center',inline:'center'});}}});
    document.querySelectorAll('#nodes tbody tr').forEach(function(r){
      if(r.getAttribute('data-node')===id){r.classList.add('hl');if(scroll==='row'){r.scrollIntoView({block:'center'});}}});}
  document.querySelectorAll('svg .node-shape').forEach(function(s){
    s.addEventListener('click',function(){highlight(s.getAttribute('data-id'),'row');});});
  document.querySelectorAll('#nodes tbody tr').forEach(function(r){
    r.addEventListener('click',function(){highlight(r.getAttribute('data-node'),'node');});});
})();
"""

_NODE_COLUMNS: list[tuple[str, str, bool]] = [  # key, header, numeric
    ("id", "id", False),
    ("op", "op", False),
    ("shape", "output shape", False),
    ("params", "params", True),
    ("macs", "MACs", True),
    ("flops", "FLOPs", True),
    ("other_flops", "other FLOPs", True),
    ("activation_bytes", "activation bytes", True),
    ("memory_access_bytes", "memory access bytes", True),
    ("conv_mac", "conv MAC (elements)", True),
    ("latency_ms", "latency ms (median)", True),
    ("latency_p10_ms", "p10 ms", True),
    ("latency_p90_ms", "p90 ms", True),
    ("share", "share", True),
]


def heat(t: float) -> str:
    """Fill color for a latency share normalized to [0, 1]: pale yellow to deep red."""
    t = min(max(t, 0.0), 1.0) ** 0.5
    lo, hi = (255, 247, 214), (189, 20, 20)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else "…" + text[-(LABEL_CHARS - 1) :]


def _svg(profile: Profile, rows: dict[str, dict[str, Any]], drawing: Layout) -> str:
    top = max((r["share"] or 0.0 for r in rows.values()), default=0.0) or 1.0
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="{drawing.width:.0f}" '
        f'height="{drawing.height:.0f}" viewBox="0 0 {drawing.width:.0f} {drawing.height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#8a8a8a"/></marker></defs>',
        '<g class="edges">',
    ]
    for _, _, points in drawing.edges:
        d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
        parts.append(f'<path class="edge" d="{d}" marker-end="url(#arrow)"/>')
    parts.append('</g><g class="nodes">')
    assert profile.graph is not None
    for node in profile.graph.nodes():
        box = drawing.boxes[node.id]
        row = rows.get(node.id)
        share = row["share"] if row else None
        fill = "#e8e8e8" if share is None else heat(share / top)
        dark = share is not None and share / top > 0.45
        tip = [f"{node.id} ({node.op}) {list(node.type.shape)}"]
        if row:
            tip.append(
                f"params {row['params']:,}, MACs {_count(row['macs'])}, FLOPs {_count(row['flops'])}"
            )
            if row["latency_ms"] is not None:
                tip.append(
                    f"{row['latency_ms']:.3f} ms median ({100 * row['share']:.1f}% of the node total)"
                )
        timing = "" if not row or row["latency_ms"] is None else f" · {row['latency_ms']:.3f} ms"
        room = LABEL_CHARS - len(timing)
        second = (node.op if len(node.op) <= room else node.op[: room - 1] + "…") + timing
        color = ' fill="#fff"' if dark else ""
        parts.append(
            f'<g class="node" data-node="{esc(node.id)}"><title>{esc(chr(10).join(tip))}</title>'
            f'<rect class="node-shape" data-id="{esc(node.id)}" x="{box.x:.1f}" y="{box.y:.1f}" '
            f'width="{box.w:.0f}" height="{box.h:.0f}" rx="4" fill="{fill}"/>'
            f'<text x="{box.x + 6:.1f}" y="{box.y + 14:.1f}"{color}>{esc(_label(node.id))}</text>'
            f'<text x="{box.x + 6:.1f}" y="{box.y + 27:.1f}"{color}>{esc(second)}</text></g>'
        )
    parts.append("</g></svg>")
    return "".join(parts)


def _count(n: int | None) -> str:
    return "?" if n is None else human(n)


def _cell(key: str, value: Any, numeric: bool) -> str:
    if value is None:
        return (
            '<td class="num" data-v="">?</td>'
            if key in ("macs", "flops", "other_flops")
            else ('<td class="num" data-v=""></td>' if numeric else "<td></td>")
        )
    if not numeric:
        text = str(value) if key != "shape" else "[" + ", ".join(map(str, value)) + "]"
        return f'<td data-v="{html.escape(text)}">{html.escape(text)}</td>'
    if key == "share":
        text = f"{100 * value:.2f}%"
    elif key.endswith("_ms"):
        text = f"{value:.3f}"
    elif key.endswith("bytes"):
        text = human_bytes(value)
    elif key == "params":
        text = f"{value:,}"
    else:
        text = human(value)
    return f'<td class="num" data-v="{value!r}">{html.escape(text)}</td>'


def _table(
    table_id: str, columns: list[tuple[str, str, bool]], rows: list[dict[str, Any]], row_key: str
) -> str:
    head = "".join(f'<th data-key="{k}">{html.escape(h)}</th>' for k, h, _ in columns)
    body = []
    for r in rows:
        cells = "".join(_cell(k, r.get(k), numeric) for k, _, numeric in columns)
        body.append(f'<tr data-node="{html.escape(str(r[row_key]))}">{cells}</tr>')
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _comparisons(data: dict[str, Any]) -> str:
    if not data["comparisons"]:
        return ""
    subject = f"archgraph -O{data['opt_level']}"
    rows = []
    for c in data["comparisons"]:
        r = c["ratios"]
        cells = [
            c["name"],
            c["description"],
            f"{c['latency_ms']:.3f}",
            f"{c['latency_p10_ms']:.3f}–{c['latency_p90_ms']:.3f}",
            *(
                "" if r[k] is None else f"{r[k]:.2f}x"
                for k in ("latency_ms", "macs", "params", "peak_estimate_bytes")
            ),
            "" if c["first_call_s"] is None else f"{c['first_call_s']:.1f}",
            c["note"],
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in (*COMPARISON_COLUMNS, "note"))
    return (
        f"<h2>Compared (ratio = {html.escape(subject)} / baseline)</h2>"
        f'<table id="comparisons"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def render(profile: Profile) -> str:
    """The whole report as one HTML document."""
    if profile.graph is None:
        raise ValueError("the profile carries no graph to draw")
    data = profile.to_json()
    rows = {r["id"]: r for r in data["nodes"]}
    drawing = layout(profile.graph)
    summary = "".join(
        f'<li class="{"warn" if line.startswith("NOT COUNTED") else ""}">{html.escape(line)}</li>'
        for line in summary_lines(data)
    )
    legend = "".join(
        f'<span style="background:{heat(t)}"></span>' for t in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    )
    groups = ""
    if data["groups"]:
        columns = [
            ("scope", "scope", False),
            ("nodes", "nodes", True),
            ("params", "params", True),
            ("macs", "MACs", True),
            ("flops", "FLOPs", True),
            ("activation_bytes", "activation bytes", True),
            ("memory_access_bytes", "memory access bytes", True),
            ("latency_ms", "latency ms", True),
            ("share", "share", True),
        ]
        groups = f"<h2>Grouped by scope, depth {data['depth']}</h2>" + _table(
            "groups", columns, data["groups"], "scope"
        )
    title = f"{profile.model} — archgraph profile"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(profile.model)} <small>batch {profile.batch} · {html.escape(profile.device)} · "
        f"-O{profile.opt_level}</small></h1>"
        f'<ul class="summary">{summary}</ul>'
        f'<h2>Graph</h2><p class="legend">node color = share of the summed per-node latency: '
        f"{legend} low → high (grey: not timed)</p>"
        f'<div class="graph-wrap">{_svg(profile, rows, drawing)}</div>'
        f"{_comparisons(data)}{groups}"
        f"<h2>Nodes</h2>{_table('nodes', _NODE_COLUMNS, data['nodes'], 'id')}"
        f"<script>{_JS}</script></body></html>\n"
    )
