"""The browser's pages, as pure functions from the store's data to HTML.

Every page is one self-contained document: inline CSS, a few lines of inline script for sorting
and filtering, SVG drawn here; nothing is fetched from a network. The run page draws each
anomaly's witness window from results.json alone (its ``witnesses`` and ``fault_windows``), as
Porcupine's visualizer is fed by its checker's output, so it costs the same for a run of a
thousand operations as for one of millions.
"""

import html
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from harness.checker.result import anomalies_of, checker_results, fault_windows, found
from harness.checker.verdict import WORDS
from harness.serve.store import INCOMPLETE, CampaignInfo, RunInfo

COLORS = {
    "VALID": "#52b788",
    "INVALID": "#e63946",
    "UNKNOWN": "#ffb703",
    "N/A": "#dee2e6",
    INCOMPLETE: "#adb5bd",
}
OP_COLORS = {"ok": "#b7e4c7", "fail": "#ffccd5", "info": "#ffe8a1"}
FAULT_COLORS = ("#4361ee", "#7209b7", "#f77f00", "#2a9d8f", "#8d99ae", "#d62828")
MAX_WINDOW = 20
"""Operations drawn in a witness window."""
PLOTS = ("latency-raw.png", "latency-quantiles.png", "rate.png", "clock-skew.png", "links.png")
"""The run's plots, in the order the run page shows them; any other PNG follows."""
LOG_TAIL = 40
"""Lines of each node's log shown on the run page."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#222}
a{color:#1d4e89}h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e5e5e5;
text-align:left;vertical-align:top}th{background:#f4f4f4;cursor:pointer;user-select:none}
.v{display:inline-block;padding:1px 7px;border-radius:3px;font-weight:600;font-size:12px}
nav{padding:10px 0;border-bottom:1px solid #ddd;margin-bottom:8px}
.filters{margin:10px 0}.filters>*{margin-right:10px}
.anomaly{border-left:4px solid #e63946;padding:4px 10px;margin:12px 0;background:#fafafa}
.anomaly.uncertain{border-color:#ffb703}.meta{color:#555}
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:420px;font-size:12px}
svg.window{display:block;margin-top:6px}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
.grid td{width:64px;height:36px;text-align:center;font-size:11px}.grid a{color:#000}
"""

SCRIPT = """
function rowsOf(t){return Array.from(t.tBodies[0].rows)}
document.querySelectorAll('table.sortable th').forEach((th,i)=>th.addEventListener('click',()=>{
 const t=th.closest('table'),up=th.dataset.dir!=='up';th.dataset.dir=up?'up':'down';
 const key=r=>{const c=r.cells[i];return c.dataset.sort!==undefined?+c.dataset.sort:c.innerText};
 const rows=rowsOf(t).sort((a,b)=>{const x=key(a),y=key(b);return (x>y)-(x<y)});
 if(!up)rows.reverse();rows.forEach(r=>t.tBodies[0].appendChild(r))}));
function applyFilters(){
 const f=id=>document.getElementById(id).value,text=f('f-text').toLowerCase();let shown=0;
 rowsOf(document.getElementById('runs')).forEach(r=>{
  const ok=(!f('f-verdict')||r.dataset.verdict===f('f-verdict'))&&
   (!f('f-nemesis')||r.dataset.nemesis===f('f-nemesis'))&&
   (!f('f-system')||r.dataset.system===f('f-system'))&&
   (!text||r.innerText.toLowerCase().includes(text));
  r.style.display=ok?'':'none';shown+=ok});
 document.getElementById('shown').innerText=shown}
document.querySelectorAll('.filters select,.filters input').forEach(e=>{
 e.addEventListener('input',applyFilters);e.addEventListener('change',applyFilters)});
"""


def e(value: object) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def url(*parts: str) -> str:
    """A URL path from its parts, each quoted."""
    return "/" + "/".join(quote(p) for p in parts if p)


def badge(word: str) -> str:
    """A verdict word on its colour."""
    return f"<span class='v' style='background:{COLORS.get(word, '#ddd')}'>{e(word)}</span>"


def page(title: str, body: Iterable[str], script: str = "") -> str:
    """A whole document."""
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
            "<nav><a href='/'>walrus-harness: runs</a></nav>",
            *body,
            f"<script>{script}</script>" if script else "",
            "</body></html>",
        ]
    )


def index(runs: list[RunInfo], campaigns: list[CampaignInfo], store: str) -> str:
    """The index: campaigns, then every run, sortable by any column and filterable."""
    body = [f"<h1>Runs in {e(store)}</h1>"]
    if campaigns:
        body.append(
            "<h2>Campaigns</h2><table class='sortable' id='campaigns'><thead><tr>"
            "<th>started</th><th>runs</th><th>valid</th><th>invalid</th><th>unknown</th>"
            "<th>campaign</th></tr></thead><tbody>"
        )
        for c in campaigns:
            body.append(
                f"<tr><td>{e(c.started)}</td><td data-sort='{len(c.rows)}'>{len(c.rows)}</td>"
                + "".join(f"<td>{c.count(w)}</td>" for w in ("VALID", "INVALID", "UNKNOWN"))
                + f"<td><a href='{url('campaign', c.rel)}/'>{e(c.rel)}</a>"
                + (f" <span class='meta'>{e(c.error)}</span>" if c.error else "")
                + "</td></tr>"
            )
        body.append("</tbody></table>")
    body.append("<h2>Runs</h2><div class='filters'>")
    body.append(_select("f-verdict", "verdict", [*COLORS]))
    body.append(_select("f-nemesis", "nemesis", sorted({r.nemesis for r in runs})))
    body.append(_select("f-system", "system", sorted({r.system for r in runs})))
    body.append(
        "<input id='f-text' type='search' placeholder='text in any column'>"
        f"<span class='meta'><span id='shown'>{len(runs)}</span> of {len(runs)} runs</span></div>"
    )
    body.append(
        "<table class='sortable' id='runs'><thead><tr><th>verdict</th><th>test</th>"
        "<th>started</th><th>system</th><th>backend</th><th>nemesis</th><th>seed</th>"
        "<th>operations</th><th>anomalies</th><th>campaign</th></tr></thead><tbody>"
    )
    for r in runs:
        campaign = (
            f"<a href='{url('campaign', r.campaign)}/'>{e(r.campaign)}</a>" if r.campaign else ""
        )
        body.append(
            f"<tr data-verdict='{e(r.verdict)}' data-nemesis='{e(r.nemesis)}' "
            f"data-system='{e(r.system)}'><td>{badge(r.verdict)}</td>"
            f"<td><a href='{url('run', r.rel)}/'>{e(r.name)}</a></td><td>{e(r.started)}</td>"
            f"<td>{e(r.system)}</td><td>{e(r.backend)}</td><td>{e(r.nemesis)}</td>"
            f"<td data-sort='{r.seed if isinstance(r.seed, int) else -1}'>{e(r.seed)}</td>"
            f"<td data-sort='{r.operations or 0}'>"
            f"{e(r.operations if r.operations is not None else '-')}</td>"
            f"<td>{e(r.anomaly_text())}</td><td>{campaign}</td></tr>"
        )
    body.append("</tbody></table>")
    return page(f"runs in {store}", body, SCRIPT)


def _select(id_: str, label: str, options: list[str]) -> str:
    choices = "".join(f"<option value='{e(o)}'>{e(o)}</option>" for o in options)
    return (
        f"<select id='{id_}' aria-label='{label}'><option value=''>any {label}</option>"
        f"{choices}</select>"
    )


def run_page(
    info: RunInfo, results: dict | None, directory: Path, files: list[str], logs: dict[str, str]
) -> str:
    """A run: its verdict per checker, each anomaly with its witness window, the plots, the
    timeline, the node logs and a download of the whole run.

    ``files`` are the run's files relative to its directory; ``logs`` each node's log tail.
    """
    base = url("file", info.rel)
    body = [
        f"<h1>{e(info.name)} {badge(info.verdict)}</h1>",
        f"<p class='meta'>{e(info.started)} · {e(info.system)} · {e(info.backend)} · nemesis "
        f"<code>{e(info.nemesis)}</code> · seed {e(info.seed)} · "
        f"{e(info.operations if info.operations is not None else '?')} operations"
        + (
            f" · campaign <a href='{url('campaign', info.campaign)}/'>{e(info.campaign)}</a>"
            if info.campaign
            else ""
        )
        + "</p>",
        f"<p><a id='download' href='{url('run', info.rel)}/run.zip' download>download the run "
        "(zip)</a>"
        + "".join(
            f" · <a href='{base}/{quote(f)}'>{e(f)}</a>"
            for f in ("timeline.html", "summary.md", "results.json", "history.jsonl", "test.json")
            if f in files
        )
        + "</p>",
    ]
    if results is None:
        body.append("<p>No results.json: the run is still going, or broke off before checking.</p>")
    else:
        body += _checkers(results)
        body += _anomalies(results, base)
    plots = [p for p in PLOTS if p in files] + sorted(
        f for f in files if f.endswith(".png") and "/" not in f and f not in PLOTS
    )
    if plots:
        body.append("<h2>Plots</h2>")
        body += [f"<div><img src='{base}/{quote(p)}' alt='{e(p)}'></div>" for p in plots]
    if logs:
        body.append("<h2>Node logs</h2>")
        for node, tail in logs.items():
            links = " · ".join(
                f"<a href='{base}/nodes/{quote(node)}/{f}'>{f}</a>"
                for f in ("node.log", "events.jsonl")
                if f"nodes/{node}/{f}" in files
            )
            body.append(
                f"<details><summary>node {e(node)} ({links})</summary>"
                f"<pre>{e(tail)}</pre></details>"
            )
    return page(f"{info.name} {info.started}", body)


def _checkers(results: dict) -> list[str]:
    out = [
        "<h2>Checkers</h2><table id='checkers'><thead><tr><th>checker</th><th>verdict</th>"
        "<th>found</th></tr></thead><tbody>"
    ]
    for name, r in checker_results(results).items():
        word = badge(WORDS.get(r["valid"], str(r["valid"])))
        out.append(f"<tr><td>{e(name)}</td><td>{word}</td><td>{e(found(r) or '-')}</td></tr>")
    out.append("</tbody></table>")
    if "error" in results:
        out.append(f"<p>The run broke off: {e(results['error'])}</p>")
    return out


def _anomalies(results: dict, base: str) -> list[str]:
    anomalies = anomalies_of(results)
    if not anomalies:
        return []
    witnesses = results.get("witnesses")
    faults = fault_windows(results)
    out = [f"<h2>Anomalies ({len(anomalies)} shown)</h2>"]
    for n, (checker, a) in enumerate(anomalies):
        certain = a.get("certain", True)
        where = []
        if a.get("topic"):
            where.append(f"topic {e(a['topic'])}")
        if a.get("positions"):
            where.append("positions " + ", ".join(f"{s}:{o}" for s, o in a["positions"]))
        if a.get("nodes"):
            where.append("nodes " + ", ".join(str(x) for x in a["nodes"]))
        shown = a.get("ops", [])[:MAX_WINDOW]
        out.append(
            f"<div class='anomaly{'' if certain else ' uncertain'}' id='a{n}' "
            f"data-checker='{e(checker)}' data-kind='{e(a['kind'])}' "
            f"data-ops='{' '.join(str(i) for i in shown)}' "
            f"data-positions='{' '.join(f'{s}:{o}' for s, o in a.get('positions', []))}'>"
            f"<b>{e(a['kind'])}</b> <span class='meta'>({e(checker)}"
            f"{'' if certain else ', possible: operations of unknown outcome may explain it'}"
            f"{'; ' + '; '.join(where) if where else ''})</span>"
            + (f" <a href='{base}/timeline.html#o{shown[0]}'>on the timeline</a>" if shown else "")
            + f"<br>{e(a.get('text', ''))}"
        )
        out.append(window_svg(shown, witnesses, faults))
        out.append("</div>")
    return out


def window_svg(indexes: list[int], witnesses: dict | None, faults: list) -> str:
    """The witness window: each operation a bar from invocation to completion on one time axis,
    the faults active over that span drawn across it."""
    if not indexes:
        return "<p class='meta'>No client operation witnesses it; the positions above do.</p>"
    if witnesses is None:
        return (
            "<p class='meta'>This results.json keeps no witness operations (it predates them); "
            "the timeline outlines them.</p>"
        )
    ops = [(i, witnesses[str(i)]) for i in indexes if str(i) in witnesses]
    if not ops:
        return "<p class='meta'>The witness operations are not in results.json.</p>"
    start = min(o["inv_ns"] for _, o in ops)
    end = max(o["ret_ns"] if o["ret_ns"] is not None else o["inv_ns"] for _, o in ops)
    pad = max((end - start) * 0.08, 1e6)
    lo, hi = start - pad, end + pad
    label_w, plot_w, row_h, top = 260, 600, 18, 22
    active = [(name, max(a, lo), min(b, hi)) for name, a, b, _ in faults if a < hi and b > lo]
    height = top + row_h * len(ops) + 22

    def x(t: float) -> float:
        return label_w + (t - lo) / (hi - lo) * plot_w

    parts = [
        f"<svg class='window' width='{label_w + plot_w + 10}' height='{height}' "
        "xmlns='http://www.w3.org/2000/svg' font-size='11'>"
    ]
    names = sorted({name for name, _, _ in active})
    for name, a, b in active:
        color = FAULT_COLORS[names.index(name) % len(FAULT_COLORS)]
        parts.append(
            f"<rect class='fault' x='{x(a):.1f}' y='{top - 4}' width='{max(x(b) - x(a), 1):.1f}' "
            f"height='{height - top - 14}' fill='{color}' opacity='0.18'>"
            f"<title>{e(name)} active</title></rect>"
            f"<text x='{x(a) + 2:.1f}' y='{top - 8}' fill='{color}'>{e(name)}</text>"
        )
    for row, (i, o) in enumerate(ops):
        y = top + row * row_h
        a = x(o["inv_ns"])
        b = x(o["ret_ns"]) if o["ret_ns"] is not None else label_w + plot_w
        what = f"#{i} p{o['process']} {o['f']} {o['value'] if o['value'] is not None else ''}"
        parts.append(
            f"<g class='op' data-index='{i}'><text x='0' y='{y + 12}'>{e(what[:48])}</text>"
            f"<rect x='{a:.1f}' y='{y + 2}' width='{max(b - a, 2):.1f}' height='{row_h - 5}' "
            f"fill='{OP_COLORS.get(o['type'], '#ccc')}' stroke='#555'>"
            f"<title>{e(o['text'])}</title></rect></g>"
        )
    axis_y = height - 6
    parts.append(
        f"<text x='{label_w}' y='{axis_y}'>{lo / 1e9:.3f} s</text>"
        f"<text x='{label_w + plot_w}' y='{axis_y}' text-anchor='end'>{hi / 1e9:.3f} s</text>"
        "</svg>"
    )
    return "".join(parts)


def campaign_page(c: CampaignInfo, runs: dict[str, RunInfo]) -> str:
    """A campaign: the heat map of verdicts (nemesis x seed), each cell linking to its run,
    then its runs as rows."""
    body = [
        f"<h1>Campaign {e(c.rel)}</h1>",
        f"<p class='meta'>{e(c.started)} · {len(c.rows)} runs: {c.count('VALID')} valid, "
        f"{c.count('INVALID')} invalid, {c.count('UNKNOWN')} unknown</p>",
    ]
    if c.error:
        body.append(f"<p>{e(c.error)}</p>")
    nemeses = list(dict.fromkeys(r.nemesis for r in c.rows))
    seeds = sorted({r.seed for r in c.rows})
    cell = {(r.nemesis, r.seed): r for r in c.rows}
    body.append(
        "<h2>Verdicts</h2><table class='grid' id='heatmap'><thead><tr><th>nemesis \\ seed</th>"
        + "".join(f"<th>{s}</th>" for s in seeds)
        + "</tr></thead><tbody>"
    )
    for nemesis in nemeses:
        body.append(f"<tr><th>{e(nemesis)}</th>")
        for seed in seeds:
            r = cell.get((nemesis, seed))
            if r is None:
                body.append("<td></td>")
                continue
            top = _most(r.anomalies)
            body.append(
                f"<td style='background:{COLORS.get(r.verdict, '#ddd')}' title='{e(r.anomalies)}'>"
                f"<a href='{url('run', r.run)}/'>{e(r.verdict[0])}<br>{e(top)}</a></td>"
            )
        body.append("</tr>")
    body.append("</tbody></table>")
    body.append(
        "<h2>Runs</h2><table class='sortable'><thead><tr><th>nemesis</th><th>seed</th>"
        "<th>verdict</th><th>anomalies</th><th>operations</th><th>run</th></tr></thead><tbody>"
    )
    for r in c.rows:
        info = runs.get(r.run)
        ops = info.operations if info is not None and info.operations is not None else "-"
        body.append(
            f"<tr><td>{e(r.nemesis)}</td><td>{r.seed}</td><td>{badge(r.verdict)}</td>"
            f"<td>{e(r.anomalies)}</td><td>{e(ops)}</td>"
            f"<td><a href='{url('run', r.run)}/'>{e(r.run)}</a></td></tr>"
        )
    body.append("</tbody></table>")
    return page(f"campaign {c.rel}", body, SCRIPT_SORT_ONLY)


def _most(anomalies: str) -> str:
    """The most frequent kind in ``kind=count`` pairs, or ``""``."""
    pairs = [p.rpartition("=") for p in anomalies.split() if "=" in p]
    counted = [(int(n), kind) for kind, _, n in pairs if n.isdigit()]
    return max(counted)[1] if counted else ""


SCRIPT_SORT_ONLY = SCRIPT.split("function applyFilters")[0]
"""The index's script without its filters (the campaign page sorts only)."""
