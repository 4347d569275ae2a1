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
