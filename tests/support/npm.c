#include "tests/support/npm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testutil.h"

#define NPM_RUN_TIMEOUT_MS 120000

const char *ac_npm_dir(void)
{
    const char *d = getenv("AC_NPM_DIR");
    if (d == NULL || *d == '\0') {
        const char *req = getenv("AC_REQUIRE_NPM");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "AC_NPM_DIR is not set but AC_REQUIRE_NPM=1 "
                            "(run ops/npm-clients.sh DIR and export AC_NPM_DIR=DIR)\n");
            exit(1);
        }
        fprintf(stderr, "no npm clients (AC_NPM_DIR unset; see ops/npm-clients.sh): skipped\n");
        exit(77);
    }
    static int checked;
    if (!checked) {
        if (system("node --version >/dev/null 2>&1") != 0) {
            fprintf(stderr, "AC_NPM_DIR is set but `node` does not run\n");
            exit(1);
        }
        checked = 1;
    }
    return d;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cloexec_pipe(int p[2])
{
    if (pipe(p) != 0) return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0) {
            close(p[0]);
            close(p[1]);
            return -1;
        }
    return 0;
}

int ac_npm_run(const char *script, const char *const *args, const char *input, char **out)
{
    *out = NULL;
    const char *dir = ac_npm_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s", ac_test_src("tests/conformance/npm/"));
    if (strlen(path) + strlen(script) + 1 > sizeof path) return -1;
    strcat(path, script);

    const char *argv[64];
    size_t argc = 0;
    argv[argc++] = "node";
    argv[argc++] = path;
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (argc + 2 > sizeof argv / sizeof argv[0]) return -1;
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    int in[2], outp[2];
    if (cloexec_pipe(in) != 0) return -1;
    if (cloexec_pipe(outp) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    /* node may exit before reading all of its stdin: a write must fail, not kill us */
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(outp[0]), close(outp[1]);
        return -1;
    }
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0) _exit(127);
        setenv("AC_NPM_DIR", dir, 1);
        execvp("node", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    int wfd = in[1], rfd = outp[0];
    fcntl(wfd, F_SETFL, O_NONBLOCK);
    size_t ilen = input ? strlen(input) : 0, ioff = 0;
    if (ilen == 0) {
        close(wfd);
        wfd = -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int failed = buf == NULL;
    long long deadline = mono_ms() + NPM_RUN_TIMEOUT_MS;
    while (!failed && rfd >= 0) {
        struct pollfd pf[2] = {{.fd = rfd, .events = POLLIN}, {.fd = wfd, .events = POLLOUT}};
        long long left = deadline - mono_ms();
        if (left <= 0) {
            fprintf(stderr, "ac_npm_run: %s timed out\n", script);
            failed = 1;
            break;
        }
        int n = poll(pf, wfd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            failed = 1;
            break;
        }
        if (wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(wfd, input + ioff, ilen - ioff);
            if (w > 0) ioff += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || ioff == ilen) {
                close(wfd);
                wfd = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (len + 1 >= cap) {
                char *nb = realloc(buf, cap * 2);
                if (nb == NULL) {
                    failed = 1;
                    break;
                }
                buf = nb;
                cap *= 2;
            }
            ssize_t r = read(rfd, buf + len, cap - len - 1);
            if (r > 0) {
                len += (size_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(rfd);
                rfd = -1;
            }
        }
    }
    if (wfd >= 0) close(wfd);
    if (rfd >= 0) close(rfd);
    if (failed) kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (failed || buf == NULL) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    if (WIFEXITED(st)) {
        if (WEXITSTATUS(st) == 127) fprintf(stderr, "ac_npm_run: cannot run node %s\n", path);
        return WEXITSTATUS(st);
    }
    return -1;
}

json_t *ac_npm_json(const char *script, const json_t *input, int *status)
{
    char *text = json_dumps(input, JSON_COMPACT);
    char *out = NULL;
    static const char *const dash[] = {"-", NULL};
    int st = text ? ac_npm_run(script, dash, text, &out) : -1;
    free(text);
    if (status) *status = st;
    json_error_t err;
    json_t *j = out ? json_loads(out, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    if (j == NULL)
        fprintf(stderr, "ac_npm_json: %s (exit %d) printed no JSON object:\n%s\n", script, st,
                out ? out : "(nothing)");
    free(out);
    return j;
}
