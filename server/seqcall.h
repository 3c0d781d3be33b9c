/* server/seqcall.h -- running a sequencer command from a handler: suspend the connection,
 * submit, and resume from the sequencer thread when the outcome is durable. */
#ifndef AC_SEQCALL_H
#define AC_SEQCALL_H

#include "ledger/sequencer.h"
#include "server/http.h"

/* Submit cmd on behalf of r (cmd->done and cmd->cls are set here). Returns ac_suspend(r)'s
 * value; when the sequencer refuses the command, cmd->status holds the reason and r is resumed
 * at once. Either way the handler is called again with the outcome in cmd->status. */
enum MHD_Result ac_seqcall(struct ac_req *r, struct ac_cmd *cmd);

#endif
