/* server/daemon.h -- the libmicrohttpd daemon. */
#ifndef AC_DAEMON_H
#define AC_DAEMON_H

#include "server/app.h"

/* Start listening on cfg.listen_host:cfg.port with a thread pool. Returns NULL on failure. */
struct MHD_Daemon *ac_daemon_start(struct ac_app *app);
void ac_daemon_stop(struct MHD_Daemon *d);

#endif
