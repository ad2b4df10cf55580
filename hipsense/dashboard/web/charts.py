"""Small inline SVG line charts, drawn on the server (no JavaScript library, no CDN).

A chart is a handful of <polyline>/<circle>/<text> elements; gaps (weeks without data) break
the line instead of being drawn as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 140
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 18, 22


def line_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    css_class: str = "",
) -> Markup:
    """An SVG chart of ``values`` (None = no data) over ``labels`` (first and last are shown)."""
    present = [v for v in values if v is not None]
    low = y_min if y_min is not None else (min(present) if present else 0.0)
    high = y_max if y_max is not None else (max(present) if present else 1.0)
    if high <= low:
        high = low + 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(values) - 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        return LEFT + index * step, TOP + plot_h * (1 - (value - low) / (high - low))

    parts = [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{LEFT}" y="12" class="chart-title">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" class="tick" text-anchor="end">{high:g}{escape(unit)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" class="tick" text-anchor="end">{low:g}{escape(unit)}</text>',
    ]
    if labels:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" class="tick">{escape(labels[0])}</text>')
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" class="tick" text-anchor="end">'
                     f'{escape(labels[-1])}</text>')
    run: list[str] = []
    for index, value in enumerate(list(values) + [None]):
        if value is None:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" class="line"/>')
            run = []
            continue
        x, y = xy(index, value)
        run.append(f"{x:.1f},{y:.1f}")
        label = escape(f"{labels[index] if index < len(labels) else ''}: {value:g}{unit}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot"><title>{label}</title></circle>')
    if not present:
        parts.append(f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" class="empty" '
                     'text-anchor="middle">no data yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
