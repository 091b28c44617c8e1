"""The graph as Graphviz DOT: every id quoted (dotted ids are not DOT identifiers), nodes labelled
with op, shape and latency and filled by their latency share like the HTML report."""

from __future__ import annotations

from archgraph.profile.html import heat
from archgraph.profile.report import Profile


def quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(profile: Profile) -> str:
    if profile.graph is None:
        raise ValueError("the profile carries no graph to draw")
    rows = {r["id"]: r for r in profile.node_rows()}
    top = max((r["share"] or 0.0 for r in rows.values()), default=0.0) or 1.0
    lines = [
        f"digraph {quote(profile.model)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, fillcolor="#e8e8e8"];',
    ]
    for node in profile.graph.nodes():
        label = f"{node.id}\n{node.op} {list(node.type.shape)}"
        attrs = ""
        row = rows.get(node.id)
        if row and row["latency_ms"] is not None:
            label += f"\n{row['latency_ms']:.3f} ms ({100 * row['share']:.1f}%)"
            attrs = f", fillcolor={quote(heat(row['share'] / top))}"
        lines.append(f"  {quote(node.id)} [label={quote(label)}{attrs}];")
    for node in profile.graph.nodes():
        for src in node.inputs:
            lines.append(f"  {quote(src)} -> {quote(node.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
