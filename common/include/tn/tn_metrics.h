#ifndef TN_METRICS_H
#define TN_METRICS_H
/*
 * tn_metrics - counters, gauges and histograms rendered in the Prometheus
 * text format for /metrics. Names follow Prometheus conventions: units in the
 * name, counters end in _total, latencies are histograms in seconds.
 *
 * A metric is registered once (name + fixed label set) and returns a handle
 * that stays valid until tn_metrics_free. Updates are plain loop-thread
 * writes: every daemon updates its metrics on its loop only.
 */
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct tn_buf;
struct tn_metrics;
struct tn_metric;

enum tn_metric_kind { TN_METRIC_COUNTER, TN_METRIC_GAUGE, TN_METRIC_HISTOGRAM };

/* tn_metrics_new - empty registry. Returns: new. */
struct tn_metrics *tn_metrics_new(void);
/* tn_metrics_free - release the registry and every handle (NULL-safe). */
void tn_metrics_free(struct tn_metrics *m);

/* tn_metrics_get - the metric named name with labels (e.g.
 * "provider=\"twilio\",reason=\"bad_sig\"", or NULL for none), registering it on first use.
 * name/help/labels borrowed (copied). Returns: borrowed, valid until tn_metrics_free. Asking for
 * the same name with another kind is a bug (TN_ASSERT). Runs on: loop. */
struct tn_metric *tn_metrics_get(struct tn_metrics *m, enum tn_metric_kind kind, const char *name,
                                 const char *help, const char *labels);

/* tn_metric_inc - counter += 1. */
void tn_metric_inc(struct tn_metric *c);
/* tn_metric_add - counter or gauge += v. */
void tn_metric_add(struct tn_metric *c, double v);
/* tn_metric_set - gauge = v. */
void tn_metric_set(struct tn_metric *g, double v);
/* tn_metric_observe - histogram sample in seconds (buckets 1 ms .. 10 s). */
void tn_metric_observe(struct tn_metric *h, double seconds);
/* tn_metric_value - current value (counter/gauge) or sample count (histogram). */
double tn_metric_value(const struct tn_metric *c);

/* tn_metrics_render - append the text exposition of every metric to out. */
enum tn_err tn_metrics_render(const struct tn_metrics *m, struct tn_buf *out);

#endif
