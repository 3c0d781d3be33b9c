/* GET /metrics: Prometheus text exposition format 0.0.4. */
#include <stdio.h>

#include "protocol/buf.h"
#include "server/handlers.h"

static void hist(struct ac_buf *b, const char *name, const char *labels, const struct ac_hist *h)
{
    uint64_t acc = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < h->nbounds; i++) {
        acc += atomic_load(&h->counts[i]);
        ac_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i],
                      (unsigned long long)acc);
    }
    acc += atomic_load(&h->counts[h->nbounds]);
    ac_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                  (unsigned long long)acc);
    ac_buf_printf(b, "%s_sum{%s} %.6f\n", name, labels, (double)atomic_load(&h->sum_micro) / 1e6);
    ac_buf_printf(b, "%s_count{%s} %llu\n", name, labels,
                  (unsigned long long)atomic_load(&h->count));
}

enum MHD_Result ac_h_metrics(struct ac_req *r)
{
    struct ac_app *app = r->app;
    struct ac_buf b = {0};
    ac_buf_adds(&b, "# HELP agentclear_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE agentclear_http_requests_total counter\n");
    for (unsigned i = 0; i <= ac_n_routes; i++) {
        char route[128];
        if (i < ac_n_routes)
            snprintf(route, sizeof route, "%s %s", ac_routes[i].method, ac_routes[i].pattern);
        else
            snprintf(route, sizeof route, "unmatched");
        for (unsigned s = 0; s < AC_STATUS_SLOTS; s++) {
            uint64_t n = atomic_load(&app->route_stats[i].by_status[s]);
            if (n == 0) continue;
            char st[8];
            if (ac_slot_status(s))
                snprintf(st, sizeof st, "%u", ac_slot_status(s));
            else
                snprintf(st, sizeof st, "other");
            ac_buf_printf(&b, "agentclear_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                          route, st, (unsigned long long)n);
        }
    }
    ac_buf_adds(&b, "# HELP agentclear_http_request_seconds Request latency by route.\n"
                    "# TYPE agentclear_http_request_seconds histogram\n");
    for (unsigned i = 0; i < ac_n_routes; i++) {
        if (atomic_load(&app->route_stats[i].seconds.count) == 0) continue;
        char labels[160];
        snprintf(labels, sizeof labels, "route=\"%s %s\"", ac_routes[i].method,
                 ac_routes[i].pattern);
        hist(&b, "agentclear_http_request_seconds", labels, &app->route_stats[i].seconds);
    }
    struct ac_seq_stats *ss = ac_seq_stats(app->seq);
    ac_buf_adds(&b, "# HELP agentclear_batch_items Items (transfers, accounts) per committed "
                    "sequencer batch.\n# TYPE agentclear_batch_items histogram\n");
    hist(&b, "agentclear_batch_items", "", &ss->batch_items);
    ac_buf_adds(&b, "# HELP agentclear_commit_seconds Write and commit latency of a batch.\n"
                    "# TYPE agentclear_commit_seconds histogram\n");
    hist(&b, "agentclear_commit_seconds", "", &ss->commit_seconds);
    ac_buf_printf(&b,
                  "# HELP agentclear_batches_failed_total Batches whose commit failed.\n"
                  "# TYPE agentclear_batches_failed_total counter\n"
                  "agentclear_batches_failed_total %llu\n"
                  "# HELP agentclear_items_committed_total Items committed by the sequencer.\n"
                  "# TYPE agentclear_items_committed_total counter\n"
                  "agentclear_items_committed_total %llu\n"
                  "# HELP agentclear_nonces_recorded_total Signed requests' nonces recorded "
                  "by the sequencer with their batch, by whose verdict made them new: the "
                  "leader's memory, or the database (reserved before the leader's load).\n"
                  "# TYPE agentclear_nonces_recorded_total counter\n"
                  "agentclear_nonces_recorded_total{verdict=\"memory\"} %llu\n"
                  "agentclear_nonces_recorded_total{verdict=\"database\"} %llu\n"
                  "# HELP agentclear_nonces_replayed_total Commands refused by the sequencer "
                  "because their nonce was used already.\n"
                  "# TYPE agentclear_nonces_replayed_total counter\n"
                  "agentclear_nonces_replayed_total %llu\n"
                  "# HELP agentclear_nonces_loaded_total Live nonces loaded into the replay "
                  "cache on becoming leader.\n"
                  "# TYPE agentclear_nonces_loaded_total counter\n"
                  "agentclear_nonces_loaded_total %llu\n"
                  "# HELP agentclear_leader 1 while this node holds the writer lease.\n"
                  "# TYPE agentclear_leader gauge\nagentclear_leader %d\n"
                  "# HELP agentclear_http_inflight Requests in progress.\n"
                  "# TYPE agentclear_http_inflight gauge\nagentclear_http_inflight %llu\n",
                  (unsigned long long)atomic_load(&ss->batches_failed),
                  (unsigned long long)atomic_load(&ss->items_committed),
                  (unsigned long long)atomic_load(&ss->nonces_in_batch),
                  (unsigned long long)atomic_load(&ss->nonces_taken),
                  (unsigned long long)atomic_load(&ss->nonces_replayed),
                  (unsigned long long)atomic_load(&ss->nonces_loaded), ac_seq_is_leader(app->seq),
                  (unsigned long long)atomic_load(&app->inflight));
    if (b.oom) {
        ac_buf_free(&b);
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
    enum MHD_Result rc =
        ac_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", ac_buf_str(&b), b.len);
    ac_buf_free(&b);
    return rc;
}
