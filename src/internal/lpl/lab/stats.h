/* Small-sample statistics for comparing placements over seeds: mean, sample standard
 * deviation, Student-t confidence intervals (quantiles computed from the t
 * distribution, not looked up), and paired differences matched by seed. Pure
 * functions over arrays of doubles; no allocation, no JSON (results.c turns them
 * into the "aggregates" of results.json, see docs/RESULTS.md). */
#ifndef LPL_STATS_H
#define LPL_STATS_H

/* A sample described: n values, their mean, sample standard deviation (n - 1 in the
 * denominator) and the two-sided t-interval for the mean at the requested level.
 * std, lo and hi are NAN when n < 2 (one value says nothing about spread); mean is
 * NAN when n == 0. */
typedef struct {
    int n;
    double mean, std;
    double lo, hi;      /* mean -+ t_{(1+level)/2, n-1} * std / sqrt(n) */
    double half;        /* (hi - lo) / 2 */
} lpl_stats_summary;

/* Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1
 * (continued fraction); NAN outside that domain. */
double lpl_incomplete_beta(double x, double a, double b);

/* Cumulative distribution function of Student's t with df > 0 degrees of freedom at t;
 * NAN if df <= 0. */
double lpl_t_cdf(double t, double df);

/* The p-quantile of Student's t with df > 0 degrees of freedom (0 < p < 1): the t with
 * lpl_t_cdf(t, df) = p, found by bisection to full double precision. NAN outside the
 * domain. */
double lpl_t_quantile(double p, double df);

/* Describes x[0..n-1] at confidence level (0 < level < 1, e.g. 0.95); values that are
 * NAN are skipped (n counts the others). */
void lpl_stats_summarize(const double *x, int n, double level, lpl_stats_summary *out);

/* Paired differences a[i] - b[i] (pairs with a NAN on either side are skipped),
 * described as lpl_stats_summarize does; diff (room for n) receives the differences
 * used, in order. Returns the number of pairs used. */
int lpl_stats_paired(const double *a, const double *b, int n, double level, lpl_stats_summary *out,
                     double *diff);

/* 1 if the interval [lo, hi] excludes zero (the difference is resolved at this
 * number of seeds), 0 otherwise (including when the interval is unknown). */
int lpl_stats_resolved(const lpl_stats_summary *s);

#endif
