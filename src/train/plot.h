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
#endif
