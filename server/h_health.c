/* GET /healthz: the process is up. GET /readyz: the database answers and this node holds the
 * writer lease (a standby answers 503 not_leader, so a load balancer sends it no writes). */
#include "ledger/db.h"
#include "server/handlers.h"

enum MHD_Result ac_h_healthz(struct ac_req *r)
{
    return ac_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result ac_h_readyz(struct ac_req *r)
{
    PGconn *c = ac_pool_get(r->app->pool);
    enum ac_qs qs = c ? ac_db_ping(c) : AC_QS_SOFT_ERROR;
    if (c) ac_pool_put(r->app->pool, c, qs < 0);
    if (qs < 0) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    if (!ac_seq_is_leader(r->app->seq)) return ac_reply_problem(r, AC_EC_NOT_LEADER, NULL, NULL);
    return ac_reply_json(r, 200, json_pack("{s:s, s:b}", "status", "ready", "leader", 1));
}
