"""timeline.html: every operation as a box in its process's column, as Jepsen's timeline.

Self-contained (inline CSS, no scripts or fonts to fetch): one column per process, time flowing
down, a box from invocation to completion coloured by outcome; hover a box for the operation.
"""

import html
from pathlib import Path

from harness.history import INF, Event, Op, nemesis_windows

MAX_OPS = 20_000
PX_PER_S = 60
COLORS = {"ok": "#b7e4c7", "fail": "#ffccd5", "info": "#ffe8a1"}


def write(ops: list[Op], nemesis: list[Event], path: Path, title: str) -> None:
    """Write the timeline of (at most MAX_OPS) operations."""
    shown = ops[:MAX_OPS]
    processes = sorted({o.process for o in shown})
    column = {p: i for i, p in enumerate(processes)}
    end = max((o.ret for o in shown if o.ret != INF), default=0) / 1e9 + 1
    height = int(end * PX_PER_S) + 40
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font:12px sans-serif;margin:0}#t{position:relative;margin:40px 10px}",
        ".op{position:absolute;width:54px;border:1px solid #666;overflow:hidden;font-size:9px;"
        "box-sizing:border-box;padding:1px}.op:hover{outline:2px solid #000;z-index:2}",
        ".h{position:absolute;top:-30px;width:54px;font-weight:bold;text-align:center}",
        ".f{position:absolute;left:0;right:0;opacity:.25;border-top:1px solid #333;font-size:10px}",
        "header{position:fixed;top:0;left:0;right:0;background:#fff;padding:4px 10px;z-index:3;"
        "border-bottom:1px solid #ccc}",
        "</style></head><body>",
        f"<header>{html.escape(title)} — {len(shown)} of {len(ops)} operations; "
        "green ok, pink fail, yellow unknown (info); shaded bands are faults</header>",
        f"<div id='t' style='height:{height}px;width:{len(processes) * 58 + 20}px'>",
    ]
    for p, i in column.items():
        parts.append(f"<div class='h' style='left:{i * 58}px'>{html.escape(str(p))}</div>")
    for name, start, stop, value in nemesis_windows(nemesis):
        top = start / 1e9 * PX_PER_S
        bottom = (end if stop == INF else stop / 1e9) * PX_PER_S
        parts.append(
            f"<div class='f' title='{html.escape(f'{name}: {value}')}' style='top:{top:.0f}px;"
            f"height:{max(1, bottom - top):.0f}px;background:#f4a261'>{html.escape(name)}</div>"
        )
    for o in shown:
        top = o.inv / 1e9 * PX_PER_S
        stop = end if o.ret == INF else o.ret / 1e9
        h = max(2.0, stop * PX_PER_S - top)
        label = o.f if o.f == "put" else "get"
        value = o.value if o.value is not None else ("EMPTY" if o.ok and o.f == "get" else "")
        tip = html.escape(
            f"{o.describe()}"
            + (f"; pos {o.pos}" if o.pos else "")
            + (f"; {o.error}" if o.error else ""),
            quote=True,
        )
        parts.append(
            f"<div class='op' title='{tip}' style='left:{column[o.process] * 58}px;"
            f"top:{top:.1f}px;height:{h:.1f}px;background:{COLORS[o.type]}'>"
            f"{label} {html.escape(str(value))}</div>"
        )
    parts.append("</div></body></html>")
    path.write_text("".join(parts))
