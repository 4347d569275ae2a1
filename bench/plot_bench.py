#!/usr/bin/python3
"""Chart JSON-lines benchmark results as SVG (standard library only).

usage: plot_bench.py OUT.svg FIELD TITLE < results.jsonl
Draws FIELD (e.g. ms or extra_bytes) against T, one line per kernel (and
pass / head_dim when several are present), log-log axes.
"""
import json
import math
import sys


def main():
    out, field, title = sys.argv[1], sys.argv[2], sys.argv[3]
    series = {}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if field not in r or "T" not in r or r[field] is None or r[field] <= 0:
            continue
        key = "%s d=%s%s" % (r.get("kernel"), r.get("head_dim"), " " + r["pass"] if r.get("pass") == "backward" else "")
        series.setdefault(key, []).append((r["T"], r[field]))
    W, H, L, R, T, B = 760, 460, 80, 230, 40, 50
    xs = [x for s in series.values() for x, _ in s]
    ys = [y for s in series.values() for _, y in s]
    lx0, lx1 = math.log10(min(xs)), math.log10(max(xs))
    ly0, ly1 = math.log10(min(ys)), math.log10(max(ys))
    lx1 = lx1 if lx1 > lx0 else lx0 + 1
    ly1 = ly1 if ly1 > ly0 else ly0 + 1
    px = lambda x: L + (math.log10(x) - lx0) / (lx1 - lx0) * (W - L - R)
    py = lambda y: H - B - (math.log10(y) - ly0) / (ly1 - ly0) * (H - T - B)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    o = ["<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='12'>" % (W, H),
         "<rect width='100%' height='100%' fill='white'/>",
         "<text x='%d' y='22' font-size='15' text-anchor='middle'>%s</text>" % ((W - R + L) // 2, title),
         "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>" % (L, T, W - L - R, H - T - B)]
    for e in range(math.floor(ly0), math.ceil(ly1) + 1):
        y = 10 ** e
        if ly0 - 1e-9 <= e <= ly1 + 1e-9:
            o.append("<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>" % (L, py(y), W - R, py(y)))
            o.append("<text x='%d' y='%.1f' text-anchor='end'>%g</text>" % (L - 6, py(y) + 4, y))
    for x in sorted(set(xs)):
        o.append("<text x='%.1f' y='%d' text-anchor='middle'>%d</text>" % (px(x), H - B + 16, x))
    o.append("<text x='%d' y='%d' text-anchor='middle'>sequence length T</text>" % ((W - R + L) // 2, H - 12))
    o.append("<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>%s (log)</text>" % (H // 2, H // 2, field))
    for i, (k, pts) in enumerate(sorted(series.items())):
        pts.sort()
        c = colors[i % len(colors)]
        o.append("<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>" % (c, " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in pts)))
        for x, y in pts:
            o.append("<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>" % (px(x), py(y), c))
        o.append("<rect x='%d' y='%d' width='14' height='3' fill='%s'/><text x='%d' y='%d'>%s</text>" % (W - R + 12, T + 10 + 18 * i, c, W - R + 30, T + 15 + 18 * i, k))
    o.append("</svg>")
    open(out, "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
