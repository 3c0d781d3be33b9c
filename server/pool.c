/* Reader connection pool and the asset scale cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "server/app.h"

struct ac_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    unsigned size, nfree;
    PGconn **free_list; /* NULL entries are slots to (re)connect */
    const char *session_sql; /* run once on every new connection (static string), or NULL */
};

void ac_pool_set_session(struct ac_pool *p, const char *sql)
{
    p->session_sql = sql;
}

struct ac_pool *ac_pool_new(const char *url, unsigned size)
{
    struct ac_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->url = strdup(url);
    p->free_list = calloc(size, sizeof *p->free_list);
    if (p->url == NULL || p->free_list == NULL) {
        free(p->url);
        free(p->free_list);
        free(p);
        return NULL;
    }
    p->size = p->nfree = size;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void ac_pool_free(struct ac_pool *p)
{
    if (p == NULL) return;
    for (unsigned i = 0; i < p->nfree; i++) PQfinish(p->free_list[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->free_list);
    free(p->url);
    free(p);
}

/* This thread's stand-in connection (ac_pool_override), or NULL. */
static _Thread_local PGconn *override;

void ac_pool_override(PGconn *c)
{
    override = c;
}

PGconn *ac_pool_get(struct ac_pool *p)
{
    if (override) return override;
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) pthread_cond_wait(&p->cv, &p->mu);
    PGconn *c = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    if (c != NULL && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
    }
    if (c == NULL) {
        char err[512];
        c = ac_db_connect(p->url, AC_DB_READER, err, sizeof err);
        if (c == NULL) {
            ac_pool_put(p, NULL, 0); /* give the slot back */
            return NULL;
        }
        if (p->session_sql) {
            PGresult *r = PQexec(c, p->session_sql);
            int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) {
                PQfinish(c);
                ac_pool_put(p, NULL, 0);
                return NULL;
            }
        }
    }
    return c;
}

void ac_pool_put(struct ac_pool *p, PGconn *c, int broken)
{
    if (override && c == override) return; /* not the pool's: its owner handles a failure */
    if (broken && c) {
        PQfinish(c);
        c = NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->free_list[p->nfree++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- assets ------------------------------------------------------------------------------------ */

#define ASSET_SLOTS 1024

struct ac_assets {
    pthread_rwlock_t lock;
    unsigned n;
    struct {
        char code[AC_ASSET_MAX + 1];
        unsigned scale;
    } e[ASSET_SLOTS];
};

struct ac_assets *ac_assets_new(void)
{
    struct ac_assets *a = calloc(1, sizeof *a);
    if (a) pthread_rwlock_init(&a->lock, NULL);
    return a;
}

void ac_assets_free(struct ac_assets *a)
{
    if (a == NULL) return;
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

void ac_assets_remember(struct ac_assets *a, const char *code, unsigned scale)
{
    pthread_rwlock_wrlock(&a->lock);
    unsigned i;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->e[i].code, code) == 0) break;
    if (i == a->n && a->n < ASSET_SLOTS) {
        snprintf(a->e[i].code, sizeof a->e[i].code, "%s", code);
        a->e[i].scale = scale;
        a->n++;
    }
    pthread_rwlock_unlock(&a->lock);
}

enum ac_ec ac_assets_scale(struct ac_app *app, const char *code, unsigned *scale)
{
    struct ac_assets *a = app->assets;
    if (!ac_asset_code_valid(code)) return AC_EC_ASSET_UNKNOWN;
    pthread_rwlock_rdlock(&a->lock);
    for (unsigned i = 0; i < a->n; i++)
        if (strcmp(a->e[i].code, code) == 0) {
            *scale = a->e[i].scale;
            pthread_rwlock_unlock(&a->lock);
            return AC_EC_OK;
        }
    pthread_rwlock_unlock(&a->lock);
    PGconn *c = ac_pool_get(app->pool);
    if (c == NULL) return AC_EC_DB_UNAVAILABLE;
    enum ac_qs qs = ac_db_asset_get(c, code, scale);
    ac_pool_put(app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return AC_EC_DB_UNAVAILABLE;
    if (qs == AC_QS_NO_RESULTS) return AC_EC_ASSET_UNKNOWN;
    ac_assets_remember(a, code, *scale);
    return AC_EC_OK;
}
