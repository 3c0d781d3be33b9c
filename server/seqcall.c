#include "server/seqcall.h"

#include "server/app.h"
#include "server/authn.h"
#include "server/idem.h"

static void resume_request(struct ac_cmd *cmd)
{
    struct ac_req *r = cmd->cls;
    /* the request is suspended: its state is the sequencer thread's until the resume */
    if (cmd->nonce_taken) r->nonce_pending = 0;
    if (r->idem) ac_idem_done(r, cmd);
    ac_resume(r);
}

enum MHD_Result ac_seqcall(struct ac_req *r, struct ac_cmd *cmd)
{
    cmd->done = resume_request;
    cmd->cls = r;
    if (r->idem) ac_idem_cmd(r, cmd);
    /* the request's nonce, recorded with the batch (server/authn.h) */
    cmd->nonce_taken = 0;
    if (r->nonce_pending && r->verified != NULL) {
        cmd->nonce_keyid = r->verified->keyid;
        cmd->nonce = r->verified->nonce;
        cmd->nonce_exp = r->nonce_exp;
        cmd->nonce_epoch = r->nonce_epoch;
    } else {
        cmd->nonce_keyid = cmd->nonce = NULL;
    }
    enum MHD_Result rc = ac_suspend(r);
    enum ac_ec ec = ac_seq_submit(r->app->seq, cmd);
    if (ec != AC_EC_OK) {
        cmd->status = ec;
        ac_resume(r);
    }
    return rc;
}
