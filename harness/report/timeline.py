"""timeline.html: every operation as a box in its process's column, as Jepsen's timeline.

Self-contained (inline CSS, no scripts or fonts to fetch): one column per process, time flowing
down, a box from invocation to completion coloured by outcome; hover a box for the operation.
As Porcupine's visualizer highlights the operations that break linearizability, every
anomaly's witness operations are outlined in red, listed at the top with the anomaly's line,
and linked from it; witnesses are drawn even past the first ``MAX_OPS`` operations.
"""

import html
from pathlib import Path

import numpy as np

from harness.history import INF
from harness.history.columns import Columns
from harness.report.plots import Window

MAX_OPS = 20_000
PX_PER_S = 60
COLORS = {"ok": "#b7e4c7", "fail": "#ffccd5", "info": "#ffe8a1"}


def write(
    c: Columns,
    windows: list[Window],
    path: Path,
    title: str,
    anomalies: list[dict] = (),
    limit: int = MAX_OPS,
) -> None:
    """Write the timeline of the first ``limit`` operations and every anomaly's witnesses
    (``anomalies`` as results.json holds them)."""
    witness: dict[int, list[str]] = {}
    for a in anomalies:
        for index in a["ops"]:
            witness.setdefault(index, []).append(f"{a['kind']}: {a['text']}")
    later = np.flatnonzero(np.isin(c.invoke_index[limit:], list(witness))) + limit
    shown = c.rows_as_ops(np.r_[np.arange(min(limit, len(c))), later])
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
        ".w{outline:3px solid #d00;z-index:1}#a{margin:40px 10px 0;color:#900}#a a{color:#900}",
        ".f{position:absolute;left:0;right:0;opacity:.25;border-top:1px solid #333;font-size:10px}",
        "header{position:fixed;top:0;left:0;right:0;background:#fff;padding:4px 10px;z-index:3;"
        "border-bottom:1px solid #ccc}",
        "</style></head><body>",
        f"<header>{html.escape(title)} — {len(shown)} of {len(c)} operations; "
        "green ok, pink fail, yellow unknown (info); shaded bands are faults; outlined in red: "
        "the operations that witness an anomaly</header>",
    ]
    if anomalies:
        parts.append("<ol id='a'>")
        for a in anomalies:
            target = f" <a href='#o{a['ops'][0]}'>show</a>" if a["ops"] else ""
            parts.append(f"<li>{html.escape(a['kind'])}: {html.escape(a['text'])}{target}</li>")
        parts.append("</ol>")
    parts.append(f"<div id='t' style='height:{height}px;width:{len(processes) * 58 + 20}px'>")
    for p, i in column.items():
        parts.append(f"<div class='h' style='left:{i * 58}px'>{html.escape(str(p))}</div>")
    for name, start, stop, value in windows:
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
            + (f"; {o.error}" if o.error else "")
            + "".join(f"; witness of {w}" for w in witness.get(o.invoke_index, ())),
            quote=True,
        )
        witnessed = o.invoke_index in witness
        attrs = f"class='op w' id='o{o.invoke_index}'" if witnessed else "class='op'"
        parts.append(
            f"<div {attrs} title='{tip}' style='left:{column[o.process] * 58}px;"
            f"top:{top:.1f}px;height:{h:.1f}px;background:{COLORS[o.type]}'>"
            f"{label} {html.escape(str(value))}</div>"
        )
    parts.append("</div></body></html>")
    path.write_text("".join(parts))
