"""The lineage of one artifact drawn as an SVG graph on the server: what it was made from (foundation,
datasets, teacher, parents) in columns left to right, and its exports to the right of it."""

from __future__ import annotations

from html import escape

from wattlm.registry import Artifact

PAGES = {"model": "models", "export": "models", "dataset": "datasets", "kb": "kb"}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 46, 100, 18, 10
LABEL_AT = 0.4  # share of an edge's length from its parent where the role label sits


def _columns(nodes: dict[str, Artifact], edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Column of each node: 0 for artifacts with no drawn parent, else one right of its furthest parent."""
    parents: dict[str, list[str]] = {node: [] for node in nodes}
    for child, parent, _ in edges:
        parents[child].append(parent)
    column: dict[str, int] = {}

    def place(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in column:
            drawn = [p for p in parents[node] if p not in seen]
            column[node] = 1 + max((place(p, seen | {node}) for p in drawn), default=-1)
        return column[node]

    for node in nodes:
        place(node)
    return column


def lineage_svg(focus: Artifact, ancestors: list[Artifact], exports: list[Artifact], title: str) -> str:
    """`ancestors` includes `focus` (as `Registry.ancestors` returns it); `exports` are its export children."""
    nodes = {art.id: art for art in [*ancestors, *exports]}
    edges = [(art.id, pid, role) for art in nodes.values() for pid, role in art.parents if pid in nodes]
    column = _columns(nodes, edges)
    rows: dict[int, list[str]] = {}
    for node in sorted(nodes, key=lambda n: (column[n], nodes[n].created)):
        rows.setdefault(column[node], []).append(node)
    position = {node: (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
                for col, members in rows.items() for row, node in enumerate(members)}
    width = PAD * 2 + (max(rows) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(len(m) for m in rows.values()) * (BOX_H + GAP_Y) - GAP_Y
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4a4a4a"/></marker></defs>']
    for child, parent, role in edges:
        (px, py), (cx, cy) = position[parent], position[child]
        x1, y1, x2, y2 = px + BOX_W, py + BOX_H / 2, cx, cy + BOX_H / 2
        parts.append(f'<line class="edge" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#4a4a4a" '
                     f'marker-end="url(#arrow)"/>')
        if role:
            # Nearer the parent than the child: edges fanning into one node would stack labels at its side.
            lx, ly = x1 + (x2 - x1) * LABEL_AT, y1 + (y2 - y1) * LABEL_AT
            parts.append(f'<text x="{lx:.0f}" y="{ly - 4:.0f}" font-size="10" text-anchor="middle">'
                         f'{escape(role)}</text>')
    for node, (x, y) in position.items():
        art = nodes[node]
        kind = art.tier or art.kind
        css = "node self" if node == focus.id else "node"
        box = (f'<g class="{css}" data-id="{art.id}"><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
               f'<text x="{x + 8}" y="{y + 19}" font-weight="bold">{escape(art.name[:26])}</text>'
               f'<text x="{x + 8}" y="{y + 36}" font-size="11">{escape(kind)} · {art.id}</text></g>')
        page = PAGES.get(art.kind)
        parts.append(f'<a href="/{page}/{art.id}">{box}</a>' if page else box)
    parts.append("</svg>")
    return "".join(parts)
