/*
 * NAME
 *	tn_metrics - a small Prometheus registry
 * DESCRIPTION
 *	Metrics are kept in registration order in a linked list; a daemon has
 *	tens of them, so lookups by name are linear and happen at registration
 *	only. Rendering groups series of one name under one HELP/TYPE header.
 * RUNS ON
 *	loop (one thread updates and renders).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>

static const double bucket_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

struct tn_metric {
    struct tn_metric *next;
    enum tn_metric_kind kind;
    char *name;
    char *help;
    char *labels; /* "" when none */
    double value; /* counter/gauge value, histogram sum */
    uint64_t count;
    uint64_t buckets[NBUCKETS];
};

struct tn_metrics {
    struct tn_metric *head, *tail;
};

/* tn_metrics_new - empty registry */
struct tn_metrics *tn_metrics_new(void)
{
    return tn_xcalloc(1, sizeof(struct tn_metrics));
}

/* tn_metrics_free - release all */
void tn_metrics_free(struct tn_metrics *m)
{
    struct tn_metric *c, *next;

    if (m == NULL)
        return;
    for (c = m->head; c != NULL; c = next) {
        next = c->next;
        tn_free(c->name);
        tn_free(c->help);
        tn_free(c->labels);
        tn_free(c);
    }
    tn_free(m);
}

/* tn_metrics_get - find or register */
struct tn_metric *tn_metrics_get(struct tn_metrics *m, enum tn_metric_kind kind, const char *name,
                                 const char *help, const char *labels)
{
    struct tn_metric *c;

    if (labels == NULL)
        labels = "";
    for (c = m->head; c != NULL; c = c->next) {
        if (strcmp(c->name, name) != 0)
            continue;
        TN_ASSERT(c->kind == kind);
        if (strcmp(c->labels, labels) == 0)
            return c;
    }
    c = tn_xcalloc(1, sizeof(*c));
    c->kind = kind;
    c->name = tn_xstrdup(name);
    c->help = tn_xstrdup(help);
    c->labels = tn_xstrdup(labels);
    if (m->tail != NULL)
        m->tail->next = c;
    else
        m->head = c;
    m->tail = c;
    return c;
}

/* tn_metric_inc - +1 */
void tn_metric_inc(struct tn_metric *c)
{
    c->value += 1;
}

/* tn_metric_add - +v */
void tn_metric_add(struct tn_metric *c, double v)
{
    c->value += v;
}

/* tn_metric_set - =v */
void tn_metric_set(struct tn_metric *g, double v)
{
    g->value = v;
}

/* tn_metric_observe - one histogram sample */
void tn_metric_observe(struct tn_metric *h, double seconds)
{
    h->value += seconds;
    h->count++;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (seconds <= bucket_le[i])
            h->buckets[i]++;
    }
}

/* tn_metric_value - value or sample count */
double tn_metric_value(const struct tn_metric *c)
{
    return c->kind == TN_METRIC_HISTOGRAM ? (double)c->count : c->value;
}

/* render_histogram - _bucket, _sum and _count series */
static enum tn_err render_histogram(const struct tn_metric *c, struct tn_buf *out)
{
    const char *sep = c->labels[0] ? "," : "";
    enum tn_err err = TN_OK;

    for (size_t i = 0; i < NBUCKETS && err == TN_OK; i++)
        err = tn_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", c->name, c->labels, sep,
                            bucket_le[i], (unsigned long long)c->buckets[i]);
    if (err == TN_OK)
        err = tn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", c->name, c->labels, sep,
                            (unsigned long long)c->count);
    if (err == TN_OK)
        err = tn_buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", c->name, c->labels,
                            c->value, c->name, c->labels, (unsigned long long)c->count);
    return err;
}

/* render_one - one series (and its header if first of its name) */
static enum tn_err render_one(const struct tn_metrics *m, const struct tn_metric *c,
                              struct tn_buf *out)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    enum tn_err err = TN_OK;
    bool first = true;

    for (const struct tn_metric *p = m->head; p != c; p = p->next) {
        if (strcmp(p->name, c->name) == 0)
            first = false;
    }
    if (first)
        err = tn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", c->name, c->help, c->name,
                            kinds[c->kind]);
    if (err != TN_OK)
        return err;
    if (c->kind == TN_METRIC_HISTOGRAM)
        return render_histogram(c, out);
    if (c->labels[0] != '\0')
        return tn_buf_printf(out, "%s{%s} %.17g\n", c->name, c->labels, c->value);
    return tn_buf_printf(out, "%s %.17g\n", c->name, c->value);
}

/* tn_metrics_render - the whole exposition; series of one name stay together */
enum tn_err tn_metrics_render(const struct tn_metrics *m, struct tn_buf *out)
{
    enum tn_err err = TN_OK;

    for (const struct tn_metric *c = m->head; c != NULL && err == TN_OK; c = c->next) {
        bool seen = false;

        for (const struct tn_metric *p = m->head; p != c; p = p->next) {
            if (strcmp(p->name, c->name) == 0)
                seen = true;
        }
        if (seen)
            continue;
        for (const struct tn_metric *s = c; s != NULL && err == TN_OK; s = s->next) {
            if (strcmp(s->name, c->name) == 0)
                err = render_one(m, s, out);
        }
    }
    return err;
}
