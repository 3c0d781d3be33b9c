#include "server/seqcall.h"

#include "server/app.h"
#include "server/idem.h"

static void resume_request(struct ac_cmd *cmd)
{
    struct ac_req *r = cmd->cls;
    if (r->idem) ac_idem_done(r, cmd);
    ac_resume(r);
}

enum MHD_Result ac_seqcall(struct ac_req *r, struct ac_cmd *cmd)
{
    cmd->done = resume_request;
    cmd->cls = r;
    if (r->idem) ac_idem_cmd(r, cmd);
    enum MHD_Result rc = ac_suspend(r);
    enum ac_ec ec = ac_seq_submit(r->app->seq, cmd);
    if (ec != AC_EC_OK) {
        cmd->status = ec;
        ac_resume(r);
    }
    return rc;
}
