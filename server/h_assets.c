/* POST /v1/ledger/assets {"code":"CNY","scale":2}: create an asset (idempotent: the same code
 * and scale again answers 200; another scale answers 409 asset_exists).
 * GET /v1/ledger/assets/{code}. Assets are immutable, so they are written directly (not through
 * the sequencer) and cached by every worker. */
#include "ledger/db.h"
#include "server/handlers.h"

enum MHD_Result ac_h_assets_post(struct ac_req *r)
{
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    const char *code;
    json_int_t scale;
    json_error_t e;
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:s, s:I}", "code", &code, "scale", &scale)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, e.text, NULL);
    }
    if (!ac_asset_code_valid(code) || scale < 0 || scale > AC_SCALE_MAX) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_ASSET_INVALID,
                                "code: 1-16 characters of [A-Z0-9_]; scale: 0..18", NULL);
    }
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    }
    int created = 0;
    enum ac_qs qs = ac_db_asset_create(c, code, (unsigned)scale, &created);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    json_t *out = json_pack("{s:s, s:I}", "code", code, "scale", scale);
    json_decref(body);
    if (qs < 0) {
        json_decref(out);
        return ac_reply_db_error(r, qs);
    }
    if (qs == AC_QS_NO_RESULTS) {
        json_decref(out);
        return ac_reply_problem(r, AC_EC_ASSET_EXISTS, NULL, NULL);
    }
    ac_assets_remember(r->app->assets, json_string_value(json_object_get(out, "code")),
                       (unsigned)scale);
    return ac_reply_json(r, created ? 201 : 200, out);
}

enum MHD_Result ac_h_assets_get(struct ac_req *r)
{
    unsigned scale;
    enum ac_ec ec = ac_assets_scale(r->app, r->params[0], &scale);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    return ac_reply_json(r, 200, json_pack("{s:s, s:i}", "code", r->params[0], "scale", scale));
}
