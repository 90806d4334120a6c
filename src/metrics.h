/* metrics.h — a Prometheus text-format endpoint (GET /metrics) on the service's own
 * libwebsockets loop; the owner renders the figures when a scrape arrives. Off unless asked for. */
#ifndef ATKV_METRICS_H
#define ATKV_METRICS_H

#include <stddef.h>

#include "buf.h"

struct lws_context;
struct atkv_metrics;

/* Listens on hostport ("ADDR:PORT") in ctx. render(arg, out) appends the exposition text.
 * Returns 0, or -1 with why (bad address, port in use). */
int atkv_metrics_start(struct lws_context *ctx, const char *hostport,
                       void (*render)(void *arg, struct atkv_buf *out), void *arg,
                       struct atkv_metrics **out, char *why, size_t why_n);
/* Frees the state; the listener goes with the context. NULL is fine. */
void atkv_metrics_free(struct atkv_metrics *m);

/* Appends "# HELP", "# TYPE" and one sample: name{labels} value. labels may be NULL. */
void atkv_metrics_add(struct atkv_buf *out, const char *name, const char *type, const char *help,
                      const char *labels, double value);

#endif
