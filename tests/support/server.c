#include "tests/support/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/httpc.h"
#include "tests/support/testutil.h"

extern char **environ;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the temporary directory -------------------------------------------------------------- */

static char tmpdir[512];

const char *ac_test_tmpdir(void)
{
    if (tmpdir[0]) return tmpdir;
    const char *base = getenv("AC_TEST_TMP");
    if (base == NULL || *base == '\0') base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/ac_e2e.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "cannot create a temporary directory under %s: %s\n", base,
                strerror(errno));
        exit(1);
    }
    return tmpdir;
}

/* The directory holds only files we created: remove them, then it. */
static void remove_tmpdir(void)
{
    if (tmpdir[0] == '\0') return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

/* ---- the child registry: every child dies with the test program -------------------------- */

#define MAX_KIDS 64
static volatile pid_t kids[MAX_KIDS];
static int handlers_installed;

static void kill_all_kids(void)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] > 0) kill(kids[i], SIGKILL);
}

static void at_exit_kill(void)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

static void on_fatal_signal(int sig)
{
    kill_all_kids(); /* async-signal-safe: kill(2) only */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void)
{
    if (handlers_installed) return;
    handlers_installed = 1;
    atexit(at_exit_kill);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error return, not a signal */
}

static void kid_add(pid_t pid)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] == 0) {
            kids[i] = pid;
            return;
        }
}

static void kid_remove(pid_t pid)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] == pid) kids[i] = 0;
}

/* Logs of every server run, for ac_test_e2e_finish(). */
#define MAX_LOGS 64
static char server_logs[MAX_LOGS][1024];
static int n_server_logs;

/* Fork and exec path with argv and envp, stdout+stderr appended to log. Only async-signal-safe
 * calls happen in the child (other threads of the test may hold locks at fork time). Returns the
 * pid or -1. */
static pid_t spawn(const char *path, char *const argv[], char *const envp[], const char *log)
{
    install_handlers();
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "cannot open %s: %s\n", log, strerror(errno));
        return -1;
    }
    int nul = open("/dev/null", O_RDONLY);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the test already died */
        dup2(nul >= 0 ? nul : fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        /* the test's own sockets (clients, the proxy) must not live on in the child: a proxy
         * that cuts a connection must really close it */
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
            for (int i = 3; i < 65536; i++)
                close(i);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execve(path, argv, envp);
        static const char msg[] = "test support: exec failed: ";
        ssize_t w = write(2, msg, sizeof msg - 1);
        w += write(2, path, strlen(path));
        w += write(2, "\n", 1);
        (void)w;
        _exit(127);
    }
    close(fd);
    if (nul >= 0) close(nul);
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    kid_add(pid);
    return pid;
}

static int status_code(int st)
{
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

/* ---- the server ---------------------------------------------------------------------------- */

/* 1 when the test's own env entries set the variable named by key[0..kl). */
static int has_env(const struct ac_test_server *s, const char *key, size_t kl)
{
    for (int i = 0; s->env[i]; i++)
        if (strncmp(s->env[i], key, kl) == 0 && s->env[i][kl] == '=') return 1;
    return 0;
}

static int is_overridden(const char *entry, const struct ac_test_server *s)
{
    if (strncmp(entry, "AGENTCLEAR_", 11) == 0) return 1; /* only what the test says */
    const char *eq = strchr(entry, '=');
    return has_env(s, entry, eq ? (size_t)(eq - entry) : strlen(entry));
}

/* 1 once the server's log says it listens with the given event loop (the line comes just after
 * /readyz can answer, so wait for it until deadline). */
static int logs_event_loop(const struct ac_test_server *s, const char *loop, long long deadline)
{
    char needle[80];
    snprintf(needle, sizeof needle, "event loop %s)", loop);
    for (;;) {
        if (ac_test_server_log_has(s, needle)) return 1;
        if (mono_ms() >= deadline) return 0;
        sleep_ms(20);
    }
}

/* The environment of a server: ours without AGENTCLEAR_*, the test's entries, then own[] (its
 * last entry may be NULL). */
static char **build_env(const struct ac_test_server *s, char *own[4])
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + AC_TEST_MAX_ENV + 5, sizeof *envp);
    if (envp == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_overridden(environ[i], s)) envp[k++] = environ[i];
    for (int i = 0; s->env[i]; i++)
        envp[k++] = s->env[i];
    for (int i = 0; i < 4 && own[i] != NULL; i++)
        envp[k++] = own[i];
    envp[k] = NULL;
    return envp;
}

static int wait_ready(struct ac_test_server *s, long long deadline, int *port_taken)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", s->port, 2000);
    *port_taken = 0;
    int ok = 0;
    while (mono_ms() < deadline) {
        if (!ac_test_server_alive(s)) {
            *port_taken = ac_test_server_log_has(s, "cannot listen");
            break;
        }
        struct ac_test_http_resp r;
        int st = ac_test_http_request(&c, "GET", "/readyz", NULL, NULL, 0, &r);
        ac_test_http_resp_free(&r);
        if (st == 200) {
            ok = 1;
            break;
        }
        sleep_ms(50);
    }
    ac_test_http_close(&c);
    return ok;
}

static int launch(struct ac_test_server *s, int ready_ms)
{
    long long deadline = mono_ms() + ready_ms;
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = ac_test_free_port();
        if (s->port == 0) return -1;
        s->runs++;
        snprintf(s->log_path, sizeof s->log_path, "%s/%s-%d.log", ac_test_tmpdir(), s->name,
                 s->runs);
        if (n_server_logs < MAX_LOGS)
            snprintf(server_logs[n_server_logs++], sizeof server_logs[0], "%s", s->log_path);
        char e_db[1100], e_listen[64], e_tok[160];
        snprintf(e_db, sizeof e_db, "AGENTCLEAR_DATABASE_URL=%s", s->db_url);
        snprintf(e_listen, sizeof e_listen, "AGENTCLEAR_LISTEN=127.0.0.1:%u", s->port);
        snprintf(e_tok, sizeof e_tok, "AGENTCLEAR_OPERATOR_TOKEN=%s", s->token);
        char *own[4] = {e_db, e_listen, e_tok, NULL};
        char e_loop[64];
        static const char loop_var[] = "AGENTCLEAR_EVENT_LOOP";
        const char *loop = ac_test_event_loop();
        if (loop != NULL && !has_env(s, loop_var, sizeof loop_var - 1)) {
            snprintf(e_loop, sizeof e_loop, "%s=%s", loop_var, loop);
            own[3] = e_loop;
        }
        char **envp = build_env(s, own);
        if (envp == NULL) return -1;
        char a0[] = "agentclear", a1[] = "serve";
        char *argv[] = {a0, a1, NULL};
        s->pid = spawn(ac_test_binary(), argv, envp, s->log_path);
        free(envp);
        if (s->pid < 0) {
            s->pid = 0;
            return -1;
        }
        int taken;
        if (wait_ready(s, deadline, &taken)) {
            if (own[3] == NULL || logs_event_loop(s, loop, deadline)) return 0;
            fprintf(stderr,
                    "server %s: not running the %s event loop that AC_TEST_EVENT_LOOP asks\n",
                    s->name, loop);
            ac_test_server_kill(s);
            ac_test_server_dump_log(s, 8192);
            return -1;
        }
        if (taken && mono_ms() < deadline) continue; /* someone took the port: another one */
        break;
    }
    if (s->pid > 0)
        fprintf(stderr, "server %s did not become ready within %d ms\n", s->name, ready_ms);
    else
        fprintf(stderr, "server %s exited with status %d before it was ready\n", s->name,
                s->exit_status);
    ac_test_server_kill(s);
    ac_test_server_dump_log(s, 8192);
    return -1;
}

int ac_test_server_start(struct ac_test_server *s, const char *name, const char *db_url,
                         const char *token, const char *const *extra_env, int ready_ms)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->db_url, sizeof s->db_url, "%s", db_url);
    snprintf(s->token, sizeof s->token, "%s", token);
    for (int i = 0; extra_env && extra_env[i] && i < AC_TEST_MAX_ENV; i++) {
        s->env[i] = strdup(extra_env[i]);
        if (s->env[i] == NULL) return -1;
    }
    return launch(s, ready_ms);
}

int ac_test_server_restart(struct ac_test_server *s, int ready_ms)
{
    if (ac_test_server_alive(s)) {
        fprintf(stderr, "restart: server %s is still running\n", s->name);
        return -1;
    }
    return launch(s, ready_ms);
}

int ac_test_server_alive(struct ac_test_server *s)
{
    if (s->pid <= 0) return 0;
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == 0) return 1;
    if (r == s->pid) s->exit_status = status_code(st);
    kid_remove(s->pid);
    s->pid = 0;
    return 0;
}

void ac_test_server_kill(struct ac_test_server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGKILL);
    int st;
    if (waitpid(s->pid, &st, 0) == s->pid) s->exit_status = status_code(st);
    kid_remove(s->pid);
    s->pid = 0;
}

int ac_test_server_stop(struct ac_test_server *s, int wait_ms)
{
    if (s->pid <= 0) return s->exit_status;
    kill(s->pid, SIGTERM);
    long long deadline = mono_ms() + wait_ms;
    while (mono_ms() < deadline) {
        if (!ac_test_server_alive(s)) return s->exit_status >= 128 ? -1 : s->exit_status;
        sleep_ms(10);
    }
    fprintf(stderr, "server %s did not stop within %d ms of SIGTERM: killed\n", s->name, wait_ms);
    ac_test_server_kill(s);
    return -1;
}

int ac_test_server_log_has(const struct ac_test_server *s, const char *needle)
{
    size_t len;
    char *log = ac_test_read_file(s->log_path, &len);
    if (log == NULL) return 0;
    int found = strstr(log, needle) != NULL;
    free(log);
    return found;
}

int ac_test_server_log_has_sanitizer_report(const struct ac_test_server *s)
{
    return ac_test_server_log_has(s, "ERROR: AddressSanitizer") ||
           ac_test_server_log_has(s, "ERROR: LeakSanitizer") ||
           ac_test_server_log_has(s, "runtime error:");
}

static void dump_file(const char *path, size_t max)
{
    size_t len;
    char *log = ac_test_read_file(path, &len);
    fprintf(stderr, "----- %s%s -----\n", path, log ? "" : " (unreadable)");
    if (log) {
        const char *from = len > max ? log + len - max : log;
        fprintf(stderr, "%s%s", len > max ? "...\n" : "", from);
        if (len && log[len - 1] != '\n') fputc('\n', stderr);
        free(log);
    }
    fprintf(stderr, "----- end of %s -----\n", path);
}

void ac_test_server_dump_log(const struct ac_test_server *s, size_t max)
{
    if (s->log_path[0]) dump_file(s->log_path, max);
}

int ac_test_run(const char *name, char *const argv[], int wait_ms)
{
    char log[1024];
    snprintf(log, sizeof log, "%s/%s.log", ac_test_tmpdir(), name);
    pid_t pid = spawn(argv[0], argv, environ, log);
    if (pid < 0) return -1;
    long long deadline = mono_ms() + wait_ms;
    int st, code = -1;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            code = status_code(st);
            break;
        }
        if (mono_ms() >= deadline) {
            fprintf(stderr, "%s did not finish within %d ms: killed\n", name, wait_ms);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        sleep_ms(10);
    }
    kid_remove(pid);
    if (code != 0) dump_file(log, 16384);
    return code;
}

int ac_test_e2e_finish(int failures)
{
    at_exit_kill();
    if (failures) {
        for (int i = 0; i < n_server_logs; i++)
            dump_file(server_logs[i], 6000);
        fprintf(stderr, "logs kept in %s\n", tmpdir);
    } else {
        remove_tmpdir();
    }
    return failures;
}

/* ---- the PostgreSQL proxy ----------------------------------------------------------------- */

#define PROXY_MAX_PAIRS 256
#define PROXY_BUF 65536

struct dir {
    char buf[PROXY_BUF];
    size_t len, off; /* bytes waiting to be written: buf[off..len) */
};

struct pair {
    int fd[2];       /* 0: the client, 1: PostgreSQL */
    struct dir d[2]; /* d[0]: client -> PostgreSQL, d[1]: PostgreSQL -> client */
};

struct ac_test_proxy {
    int lfd;
    int wake[2];
    pthread_t thread;
    char up_host[256], up_port[16];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cut, stop;
    unsigned cut_req, cut_done; /* generations: a cut request is done when they are equal */
    unsigned nconn;
    struct pair *pairs[PROXY_MAX_PAIRS];
};

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void pair_close(struct ac_test_proxy *p, int i)
{
    struct pair *x = p->pairs[i];
    if (x == NULL) return;
    close(x->fd[0]);
    close(x->fd[1]);
    free(x);
    p->pairs[i] = NULL;
    pthread_mutex_lock(&p->mu);
    p->nconn--;
    pthread_mutex_unlock(&p->mu);
}

static int upstream_connect(struct ac_test_proxy *p)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(p->up_host, p->up_port, &hints, &res) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static void on_accept(struct ac_test_proxy *p)
{
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0) return;
    /* read now, not before poll(): a restore while it waited must let this connection through */
    pthread_mutex_lock(&p->mu);
    int cut = p->cut;
    pthread_mutex_unlock(&p->mu);
    if (cut) { /* the database is "down": refuse by closing at once */
        close(fd);
        return;
    }
    int up = upstream_connect(p);
    int slot = -1;
    for (int i = 0; i < PROXY_MAX_PAIRS && slot < 0; i++)
        if (p->pairs[i] == NULL) slot = i;
    struct pair *x = up >= 0 && slot >= 0 ? calloc(1, sizeof *x) : NULL;
    if (x == NULL) {
        close(fd);
        if (up >= 0) close(up);
        return;
    }
    set_nonblock(fd);
    set_nonblock(up);
    x->fd[0] = fd;
    x->fd[1] = up;
    p->pairs[slot] = x;
    pthread_mutex_lock(&p->mu);
    p->nconn++;
    pthread_mutex_unlock(&p->mu);
}

/* Move bytes for one pair; returns -1 when the pair is finished (EOF or error on a side). */
static int pump(struct pair *x, const short rev[2])
{
    for (int k = 0; k < 2; k++) {
        struct dir *d = &x->d[k];
        int src = x->fd[k], dst = x->fd[1 - k];
        if (rev[k] & (POLLERR | POLLNVAL)) return -1;
        if (d->len == 0 && (rev[k] & (POLLIN | POLLHUP))) {
            ssize_t n = read(src, d->buf, sizeof d->buf);
            if (n == 0) return -1;
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                return -1;
            }
            d->len = (size_t)n;
            d->off = 0;
        }
        while (d->off < d->len) {
            ssize_t n = send(dst, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break; /* wait for POLLOUT */
                if (errno == EINTR) continue;
                return -1;
            }
            d->off += (size_t)n;
        }
        if (d->off == d->len) d->len = d->off = 0;
    }
    return 0;
}

static void *proxy_main(void *arg)
{
    struct ac_test_proxy *p = arg;
    struct pollfd *fds = calloc(2 + 2 * PROXY_MAX_PAIRS, sizeof *fds);
    int *idx = calloc(2 + 2 * PROXY_MAX_PAIRS, sizeof *idx);
    if (fds == NULL || idx == NULL) {
        free(fds);
        free(idx);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stop;
        unsigned req = p->cut_req;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        if (req != p->cut_done) {
            for (int i = 0; i < PROXY_MAX_PAIRS; i++)
                pair_close(p, i);
            pthread_mutex_lock(&p->mu);
            p->cut_done = req;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
        int n = 0;
        fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
            struct pair *x = p->pairs[i];
            if (x == NULL) continue;
            for (int k = 0; k < 2; k++) {
                short ev = 0;
                if (x->d[k].len == 0) ev |= POLLIN;     /* room to read from side k */
                if (x->d[1 - k].len > 0) ev |= POLLOUT; /* bytes to write to side k */
                idx[n] = i;
                fds[n++] = (struct pollfd){.fd = x->fd[k], .events = ev};
            }
        }
        int r = poll(fds, (nfds_t)n, 1000);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        if (fds[0].revents) {
            char drain[64];
            while (read(p->wake[0], drain, sizeof drain) > 0) {
            }
        }
        for (int j = 2; j < n; j += 2) {
            int i = idx[j];
            if (p->pairs[i] == NULL) continue;
            short rev[2] = {fds[j].revents, fds[j + 1].revents};
            if ((rev[0] | rev[1]) == 0) continue;
            if (pump(p->pairs[i], rev) != 0) pair_close(p, i);
        }
        if (fds[1].revents & POLLIN) on_accept(p);
    }
    for (int i = 0; i < PROXY_MAX_PAIRS; i++)
        pair_close(p, i);
    free(fds);
    free(idx);
    return NULL;
}

/* Split a postgresql:// URL around its host[:port]: host_at/host_end delimit "host[:port]". */
static int split_url(const char *url, struct ac_test_proxy *p, size_t *host_at, size_t *host_end)
{
    const char *s = strstr(url, "://");
    if (s == NULL) return -1;
    s += 3;
    size_t auth_len = strcspn(s, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (s[i] == '@') at = s + i;
    const char *h = at ? at + 1 : s;
    const char *end = s + auth_len;
    const char *colon = NULL;
    if (*h == '[') { /* [ipv6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL) return -1;
        snprintf(p->up_host, sizeof p->up_host, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        size_t hl = colon ? (size_t)(colon - h) : (size_t)(end - h);
        snprintf(p->up_host, sizeof p->up_host, "%.*s", (int)hl, h);
    }
    if (p->up_host[0] == '\0' || strchr(p->up_host, '/') || strchr(p->up_host, ','))
        return -1; /* a Unix socket or several hosts: nothing to proxy */
    if (colon)
        snprintf(p->up_port, sizeof p->up_port, "%.*s", (int)(end - colon - 1), colon + 1);
    else
        snprintf(p->up_port, sizeof p->up_port, "5432");
    *host_at = (size_t)(h - url);
    *host_end = (size_t)(end - url);
    return 0;
}

struct ac_test_proxy *ac_test_proxy_start(const char *db_url, char *out_url, size_t cap)
{
    install_handlers();
    struct ac_test_proxy *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->lfd = p->wake[0] = p->wake[1] = -1;
    size_t host_at, host_end;
    if (split_url(db_url, p, &host_at, &host_end) != 0) {
        fprintf(stderr, "proxy: cannot find host:port in the database URL\n");
        free(p);
        return NULL;
    }
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->lfd, 128) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        pipe(p->wake) != 0) {
        fprintf(stderr, "proxy: %s\n", strerror(errno));
        if (p->lfd >= 0) close(p->lfd);
        free(p);
        return NULL;
    }
    set_nonblock(p->lfd);
    set_nonblock(p->wake[0]);
    set_nonblock(p->wake[1]);
    snprintf(out_url, cap, "%.*s127.0.0.1:%u%s", (int)host_at, db_url, ntohs(sa.sin_port),
             db_url + host_end);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        close(p->lfd);
        close(p->wake[0]);
        close(p->wake[1]);
        free(p);
        return NULL;
    }
    return p;
}

static void wake(struct ac_test_proxy *p)
{
    char c = 1;
    ssize_t n = write(p->wake[1], &c, 1);
    (void)n; /* a full pipe already means "wake up" */
}

void ac_test_proxy_cut(struct ac_test_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->cut = 1;
    unsigned gen = ++p->cut_req;
    wake(p);
    while (p->cut_done != gen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void ac_test_proxy_restore(struct ac_test_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->cut = 0;
    pthread_mutex_unlock(&p->mu);
    wake(p);
}

unsigned ac_test_proxy_connections(struct ac_test_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->nconn;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void ac_test_proxy_stop(struct ac_test_proxy *p)
{
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_mutex_unlock(&p->mu);
    wake(p);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
