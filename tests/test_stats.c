/* Statistics of seed-resolved comparisons (src/lab/stats.c) against values computed
 * here independently: closed-form t quantiles for 1, 2 and 4 degrees of freedom, the
 * t density integrated with Simpson's rule for the others, the normal limit, and
 * means / standard deviations / intervals worked out by hand. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "lpl/lab/stats.h"

/* Student t density, straight from its formula. */
static double t_pdf(double t, double df)
{
    return exp(lgamma(0.5 * (df + 1)) - lgamma(0.5 * df)) / sqrt(df * M_PI) * pow(1 + t * t / df, -0.5 * (df + 1));
}

/* P(0 < T < t) by composite Simpson with many panels. */
static double t_mass(double t, double df)
{
    const int n = 200000;
    double h = t / n, s = t_pdf(0, df) + t_pdf(t, df);
    for (int i = 1; i < n; i++)
        s += (i % 2 ? 4 : 2) * t_pdf(i * h, df);
    return s * h / 3;
}

static void test_closed_forms(void)
{
    const double ps[] = {0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.1, 0.025};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double p = ps[i];
        /* df 1 is the Cauchy distribution. */
        CHECK_CLOSE(lpl_t_quantile(p, 1), tan(M_PI * (p - 0.5)), 1e-10, 1e-10, "t quantile df 1");
        /* df 2: t = (2p - 1) / sqrt(2 p (1 - p)). */
        CHECK_CLOSE(lpl_t_quantile(p, 2), (2 * p - 1) / sqrt(2 * p * (1 - p)), 1e-10, 1e-10, "t quantile df 2");
        /* df 4: a = 4p(1-p), q = cos(acos(sqrt a) / 3) / sqrt a, t = sign * 2 sqrt(q - 1). */
        double a = 4 * p * (1 - p), q = cos(acos(sqrt(a)) / 3) / sqrt(a);
        double t4 = (p > 0.5 ? 1 : -1) * 2 * sqrt(q - 1);
        CHECK_CLOSE(lpl_t_quantile(p, 4), t4, 1e-9, 1e-9, "t quantile df 4");
    }
    /* The 95% two-sided value for 2 df: t / sqrt(2 + t^2) = 0.95 exactly. */
    double t2 = lpl_t_quantile(0.975, 2);
    CHECK_CLOSE(t2 / sqrt(2 + t2 * t2), 0.95, 1e-15, 0, "t(0.975, 2)");
}

static void test_integrated(void)
{
    const double dfs[] = {3, 5, 7, 9, 19, 29};
    const double ps[] = {0.9, 0.975, 0.995};
    for (size_t i = 0; i < sizeof dfs / sizeof dfs[0]; i++)
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
            double t = lpl_t_quantile(ps[j], dfs[i]);
            CHECK_CLOSE(0.5 + t_mass(t, dfs[i]), ps[j], 1e-9, 0, "integrated density up to the quantile");
            CHECK_CLOSE(lpl_t_cdf(t, dfs[i]), ps[j], 1e-12, 0, "cdf(quantile)");
            CHECK_CLOSE(lpl_t_cdf(-t, dfs[i]), 1 - ps[j], 1e-12, 0, "symmetry");
        }
    /* Many degrees of freedom: the normal quantile 1.959963984540054. */
    CHECK_CLOSE(lpl_t_quantile(0.975, 1e7), 1.959963984540054, 1e-6, 0, "normal limit");
}

static void test_domain(void)
{
    CHECK(isnan(lpl_t_quantile(0, 3)) && isnan(lpl_t_quantile(1, 3)) && isnan(lpl_t_quantile(0.9, 0)),
          "quantile outside its domain is NAN");
    CHECK(isnan(lpl_t_cdf(1, -1)), "cdf with df <= 0 is NAN");
    CHECK(lpl_t_quantile(0.5, 3) == 0, "median is 0");
    CHECK(isnan(lpl_incomplete_beta(1.5, 1, 1)), "I_x outside [0, 1] is NAN");
    /* I_x(1, 1) = x, I_x(a, 1) = x^a. */
    CHECK_CLOSE(lpl_incomplete_beta(0.3, 1, 1), 0.3, 1e-14, 0, "I_x(1,1)");
    CHECK_CLOSE(lpl_incomplete_beta(0.7, 3.5, 1), pow(0.7, 3.5), 1e-13, 0, "I_x(a,1)");
}

static void test_summary(void)
{
    /* 1, 2, 3, 4: mean 2.5, sample variance 5/3. */
    const double x[] = {1, 2, 3, 4};
    lpl_stats_summary s;
    lpl_stats_summarize(x, 4, 0.95, &s);
    CHECK(s.n == 4, "n %d", s.n);
    CHECK_CLOSE(s.mean, 2.5, 1e-15, 0, "mean");
    CHECK_CLOSE(s.std, sqrt(5.0 / 3.0), 1e-15, 0, "sample std");
    /* df 3: t = 3.182446305284263 (0.975 quantile), checked by integration above. */
    double t3 = lpl_t_quantile(0.975, 3);
    CHECK_CLOSE(0.5 + t_mass(t3, 3), 0.975, 1e-9, 0, "df 3 quantile");
    CHECK_CLOSE(s.half, t3 * sqrt(5.0 / 3.0) / 2.0, 1e-14, 0, "half interval");
    CHECK_CLOSE(s.lo, 2.5 - s.half, 1e-15, 0, "lo");
    CHECK_CLOSE(s.hi, 2.5 + s.half, 1e-15, 0, "hi");

    /* Three seeds (df 2, closed form): a tiny spread next to a large mean. */
    const double y[] = {5.7101, 5.7103, 5.7108};
    lpl_stats_summarize(y, 3, 0.95, &s);
    double m = (5.7101 + 5.7103 + 5.7108) / 3;
    double sd = sqrt(((5.7101 - m) * (5.7101 - m) + (5.7103 - m) * (5.7103 - m) + (5.7108 - m) * (5.7108 - m)) / 2);
    CHECK_CLOSE(s.std, sd, 1e-15, 1e-9, "std of close values");
    CHECK_CLOSE(s.half, 0.95 / sqrt(2 * 0.975 * 0.025) * sd / sqrt(3.0), 1e-15, 1e-9, "half interval at 3 seeds");

    /* One value: a mean but no spread; NANs are skipped. */
    const double z[] = {NAN, 7.0};
    lpl_stats_summarize(z, 2, 0.95, &s);
    CHECK(s.n == 1 && s.mean == 7.0 && isnan(s.std) && isnan(s.lo) && isnan(s.hi), "one value");
    CHECK(!lpl_stats_resolved(&s), "one value is never resolved");
    lpl_stats_summarize(z, 0, 0.95, &s);
    CHECK(s.n == 0 && isnan(s.mean), "no values");
}

static void test_paired(void)
{
    /* Placement a is worse than b by about 0.6 at each seed; the third pair is missing. */
    const double a[] = {6.31, 6.40, NAN, 6.35};
    const double b[] = {5.70, 5.80, 5.75, 5.74};
    double d[4];
    lpl_stats_summary s;
    int n = lpl_stats_paired(a, b, 4, 0.95, &s, d);
    CHECK(n == 3 && s.n == 3, "pairs used %d", n);
    CHECK_CLOSE(d[0], 0.61, 1e-12, 0, "first difference");
    CHECK_CLOSE(d[2], 0.61, 1e-12, 0, "third pair used is the fourth seed");
    CHECK_CLOSE(s.mean, (0.61 + 0.60 + 0.61) / 3, 1e-12, 0, "mean difference");
    CHECK(lpl_stats_resolved(&s), "consistent differences are resolved: [%g, %g]", s.lo, s.hi);
    /* Differences of both signs: the interval straddles zero. */
    const double c[] = {5.9, 5.6, 5.8, 5.7};
    lpl_stats_paired(c, b, 4, 0.95, &s, d);
    CHECK(!lpl_stats_resolved(&s), "mixed differences are unresolved: [%g, %g]", s.lo, s.hi);
}

int main(void)
{
    test_closed_forms();
    test_integrated();
    test_domain();
    test_summary();
    test_paired();
    return check_report("test_stats");
}
