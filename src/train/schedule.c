/* schedule.c — learning-rate schedules: linear warm-up, then constant, linear or cosine decay.
 *
 * Steps count optimisation steps (batches) from 0. With W = warmup and T = total:
 *   step < W:        base * step / W                      (0 at step 0, as in the usual linear warm-up)
 *   t = step - W:    constant: base
 *                    linear:   base * (1 - f (1 - r))                 f = min(t / T, 1), r = final_ratio
 *                    cosine:   base * (r + (1 - r) (1 + cos(pi f)) / 2)
 * so the decay reaches base * r at step W + T and stays there. T <= 0 means no decay. */
#include "crossrec/train.h"

#include <math.h>

double cr_lr_at(const cr_schedule *s, double base, int64_t step) {
    if (!s) return base;
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup) return base * (double)step / (double)s->warmup;
    if (s->kind == CR_LR_CONSTANT || s->total <= 0) return base;
    int64_t t = step - (s->warmup > 0 ? s->warmup : 0);
    double f = t >= s->total ? 1.0 : (double)t / (double)s->total;
    double r = s->final_ratio;
    if (s->kind == CR_LR_LINEAR) return base * (1.0 - f * (1.0 - r));
    /* cosine; at f = 1, cos(pi) = -1 exactly enough that the result is base * r to rounding */
    return base * (r + (1.0 - r) * 0.5 * (1.0 + cos(M_PI * f)));
}
