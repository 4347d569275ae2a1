#include "train/plot.h"
#include "core/error.h"
#include "io/atomic_write.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *buf; size_t len, cap; int oom; } sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = s->cap - s->len;
        va_start(ap, fmt);
        int k = vsnprintf(s->buf ? s->buf + s->len : NULL, s->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { s->oom = 1; return; }
        if (s->buf && (size_t)k < room) { s->len += (size_t)k; return; }
        size_t ncap = (s->cap + (size_t)k + 1) * 2;
        char *nb = realloc(s->buf, ncap);
        if (!nb) { s->oom = 1; return; }
        s->buf = nb;
        s->cap = ncap;
    }
}

static double tx(double v, int lg) { return lg ? log10(v) : v; }

fb_status fb_plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                      const fb_plot_series *series, int n_series, int log_x, int log_y) {
    static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    const double W = 720, H = 440, L = 70, R = 20, T = 40, B = 50;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y) || (log_x && x <= 0) || (log_y && y <= 0)) continue;
            x = tx(x, log_x); y = tx(y, log_y);
            x0 = fmin(x0, x); x1 = fmax(x1, x); y0 = fmin(y0, y); y1 = fmax(y1, y);
        }
    if (!(x0 <= x1)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    double pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    sbuf sb = {0};
    sb_printf(&sb, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='12'>\n", W, H);
    sb_printf(&sb, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%g' y='22' font-size='15' text-anchor='middle'>%s</text>\n", W / 2, title);
    sb_printf(&sb, "<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#444'/>\n", L, T, W - L - R, H - T - B);
    for (int k = 0; k <= 5; k++) {
        double fx = x0 + (x1 - x0) * k / 5, fy = y0 + (y1 - y0) * k / 5;
        double px = L + (W - L - R) * k / 5, py = H - B - (H - T - B) * k / 5;
        sb_printf(&sb, "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='#ddd'/>\n", L, py, W - R, py);
        sb_printf(&sb, "<text x='%g' y='%g' text-anchor='middle'>%.4g</text>\n", px, H - B + 16, log_x ? pow(10, fx) : fx);
        sb_printf(&sb, "<text x='%g' y='%g' text-anchor='end'>%.4g</text>\n", L - 6, py + 4, log_y ? pow(10, fy) : fy);
    }
    sb_printf(&sb, "<text x='%g' y='%g' text-anchor='middle'>%s</text>\n", L + (W - L - R) / 2, H - 12, xlabel);
    sb_printf(&sb, "<text x='16' y='%g' text-anchor='middle' transform='rotate(-90 16 %g)'>%s</text>\n", T + (H - T - B) / 2,
              T + (H - T - B) / 2, ylabel);
    for (int s = 0; s < n_series; s++) {
        const char *col = colors[s % 6];
        sb_printf(&sb, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", col);
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y) || (log_x && x <= 0) || (log_y && y <= 0)) continue;
            double px = L + (tx(x, log_x) - x0) / (x1 - x0) * (W - L - R);
            double py = H - B - (tx(y, log_y) - y0) / (y1 - y0) * (H - T - B);
            sb_printf(&sb, "%.1f,%.1f ", px, py);
        }
        sb_printf(&sb, "'/>\n<rect x='%g' y='%g' width='14' height='3' fill='%s'/><text x='%g' y='%g'>%s</text>\n", W - R - 170,
                  T + 14 + 16 * s, col, W - R - 150, T + 18 + 16 * s, series[s].label);
    }
    sb_printf(&sb, "</svg>\n");
    if (sb.oom) { free(sb.buf); return fb_fail(FB_ERR_OOM, "plot: out of memory"); }
    fb_status st = fb_atomic_write_file(path, sb.buf, sb.len);
    free(sb.buf);
    return st;
}

/* Length of the valid UTF-8 sequence at p (2-4 bytes), or 0. */
static int utf8_len(const unsigned char *p) {
    const int n = p[0] >= 0xf0 && p[0] < 0xf5 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* Text for SVG: XML-escaped, valid UTF-8 kept, control bytes and stray
 * non-ASCII bytes shown as their hex value; tok: spaces and newlines
 * visible (a dot, an arrow). */
static void sb_text(sbuf *s, const char *t, int tok) {
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        const int u = *p >= 0x80 ? utf8_len(p) : 0;
        if (u) {
            sb_printf(s, "%.*s", u, (const char *)p);
            p += u - 1;
            continue;
        }
        if (*p == '<') sb_printf(s, "&lt;");
        else if (*p == '>') sb_printf(s, "&gt;");
        else if (*p == '&') sb_printf(s, "&amp;");
        else if (*p == '\'') sb_printf(s, "&#39;");
        else if (*p == '"') sb_printf(s, "&quot;");
        else if (tok && *p == ' ') sb_printf(s, "&#183;");
        else if (tok && *p == '\n') sb_printf(s, "&#8629;");
        else if (*p < 0x20 || *p >= 0x7f) sb_printf(s, "\\x%02x", *p);
        else sb_printf(s, "%c", *p);
    }
}

fb_status fb_plot_heatmaps_svg(const char *path, const char *title, const fb_heatmap *maps, int n_maps, int n, int cols,
                               const char *const *labels) {
    if (!path || !maps || n_maps <= 0 || n <= 0) return fb_fail(FB_ERR_INVALID_ARG, "heatmaps: nothing to draw");
    if (cols <= 0) cols = 4;
    if (cols > n_maps) cols = n_maps;
    const int rows = (n_maps + cols - 1) / cols;
    const double cell = n <= 16 ? 12 : n <= 32 ? 8 : n <= 64 ? 5 : 3, side = cell * n;
    const double lab = labels ? 22 : 4, gap = 24, top = 40;
    const double pw = lab + side + gap, ph = 18 + lab + side + gap;
    const double W = cols * pw + gap, Hh = top + rows * ph;
    sbuf sb = {0};
    sb_printf(&sb, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='12'>\n", W, Hh);
    sb_printf(&sb, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%g' y='22' font-size='14' text-anchor='middle'>", W / 2);
    sb_text(&sb, title ? title : "", 0);
    sb_printf(&sb, "</text>\n");
    for (int k = 0; k < n_maps; k++) {
        const double x0 = gap + (k % cols) * pw + lab, y0 = top + (k / cols) * ph + 18 + lab;
        sb_printf(&sb, "<text x='%g' y='%g' text-anchor='middle'>", x0 + side / 2, y0 - lab - 6);
        sb_text(&sb, maps[k].title ? maps[k].title : "", 0);
        sb_printf(&sb, "</text>\n<g transform='translate(%g %g) scale(%g)' fill='#08306b' shape-rendering='crispEdges'>\n", x0, y0, cell);
        /* one path per opacity level (sqrt(v) in steps of 1/LEVELS) keeps files small */
        enum { LEVELS = 24 };
        for (int q = 1; q <= LEVELS; q++) {
            int any = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    const double v = maps[k].v[(size_t)i * (size_t)n + (size_t)j];
                    if (!(v >= 1e-4)) continue;
                    int lv = (int)ceil(sqrt(v > 1 ? 1 : v) * LEVELS);
                    if (lv != q) continue;
                    if (!any) sb_printf(&sb, "<path fill-opacity='%.3f' d='", (double)q / LEVELS);
                    any = 1;
                    sb_printf(&sb, "M%d %dh1v1h-1z", j, i);
                }
            if (any) sb_printf(&sb, "'/>\n");
        }
        sb_printf(&sb, "</g>\n<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#888' stroke-width='0.5'/>\n", x0, y0,
                  side, side);
        if (labels) {
            const double fs = cell < 7 ? cell : 7;
            sb_printf(&sb, "<g font-size='%g' font-family='monospace' fill='#444'>\n", fs);
            for (int i = 0; i < n; i++) {
                sb_printf(&sb, "<text x='%g' y='%g' text-anchor='end'>", x0 - 2, y0 + (i + 0.8) * cell);
                sb_text(&sb, labels[i] ? labels[i] : "", 1);
                sb_printf(&sb, "</text><text transform='translate(%g %g) rotate(-90)'>", x0 + (i + 0.75) * cell, y0 - 3);
                sb_text(&sb, labels[i] ? labels[i] : "", 1);
                sb_printf(&sb, "</text>\n");
            }
            sb_printf(&sb, "</g>\n");
        }
    }
    sb_printf(&sb, "</svg>\n");
    if (sb.oom) { free(sb.buf); return fb_fail(FB_ERR_OOM, "heatmaps: out of memory"); }
    fb_status st = fb_atomic_write_file(path, sb.buf, sb.len);
    free(sb.buf);
    return st;
}
