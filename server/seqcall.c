#include "server/seqcall.h"

#include "server/app.h"

static void resume_request(struct ac_cmd *cmd)
{
    ac_resume(cmd->cls);
}

enum MHD_Result ac_seqcall(struct ac_req *r, struct ac_cmd *cmd)
{
    cmd->done = resume_request;
    cmd->cls = r;
    enum MHD_Result rc = ac_suspend(r);
    enum ac_ec ec = ac_seq_submit(r->app->seq, cmd);
    if (ec != AC_EC_OK) {
        cmd->status = ec;
        ac_resume(r);
    }
    return rc;
}
