/* Line charts as standalone SVG files (no plotting library needed): loss
 * curves and benchmark charts. */
#ifndef FB_TRAIN_PLOT_H
#define FB_TRAIN_PLOT_H
#include "flashblock.h"

typedef struct fb_plot_series {
    const char *label;
    const double *x, *y;
    int n;
} fb_plot_series;

/* Writes atomically; NaN points are skipped. log_x/log_y: logarithmic axes. */
fb_status fb_plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                      const fb_plot_series *series, int n_series, int log_x, int log_y);

/* A grid of square heatmaps, one panel per map: map k is an n×n matrix
 * (row-major, e.g. attention probabilities, row = query) with values in
 * [0, 1], drawn as the opacity sqrt(v) of one colour in 24 levels (cells
 * under 1e-4 left white). labels: n axis labels (tokens; XML-escaped here) or NULL. */
typedef struct fb_heatmap {
    const char *title;
    const float *v;
} fb_heatmap;
fb_status fb_plot_heatmaps_svg(const char *path, const char *title, const fb_heatmap *maps, int n_maps, int n, int cols,
                               const char *const *labels);
#endif
