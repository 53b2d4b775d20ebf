/*
 * gskey_client.c - talk to the gsrender worker: shared memory, Unix socket, spawn, restart.
 *
 * The host process never loads Python, torch or CUDA: the keyer runs in a separate
 * `gsrender serve` process that this file starts on demand and restarts once if it
 * dies mid-render. See ofx_bridge/PROTOCOL.md for the wire format.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np, POSIX_SPAWN_SETSID */
#endif

#include "gskey_client.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GSRENDER_WORKER_DEFAULT
#define GSRENDER_WORKER_DEFAULT "gsrender serve"
#endif

#define GS_MAX_MESSAGE (1u << 20)
#define GS_POLL_MS 100

extern char **environ;

/* One worker start at a time per host process. */
static pthread_mutex_t g_spawn_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint g_shm_counter;

/* ------------------------------------------------------------------ small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not UTF-8
 * (stray continuation bytes, overlong forms, surrogates, beyond U+10FFFF). */
static int utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; ++i)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* A value as it can be shown in one message line: control characters and bytes that are not
 * UTF-8 escaped (\n, \r, \t, \xNN), at most 60 characters. */
static void shown_value(const char *v, char *out, size_t outlen)
{
    size_t n = 0, chars = 0;
    out[0] = '\0';
    for (const unsigned char *c = (const unsigned char *)v; *c && n + 8 < outlen; ++c) {
        if (++chars > 60) {
            n += (size_t)snprintf(out + n, outlen - n, "...");
            break;
        }
        if (*c == '\n')
            n += (size_t)snprintf(out + n, outlen - n, "\\n");
        else if (*c == '\r')
            n += (size_t)snprintf(out + n, outlen - n, "\\r");
        else if (*c == '\t')
            n += (size_t)snprintf(out + n, outlen - n, "\\t");
        else if (*c < 0x20 || *c == 0x7f || (*c >= 0x80 && utf8_sequence(c) == 0))
            n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", *c);
        else if (*c >= 0x80) { /* a whole UTF-8 character */
            int k = utf8_sequence(c);
            memcpy(out + n, c, (size_t)k);
            n += (size_t)k;
            c += k - 1;
        } else
            out[n++] = (char)*c;
        out[n] = '\0';
    }
}

/* Index of the first control character (other than tab) in s, or -1. */
static long first_control(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; ++c)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return (long)(c - (const unsigned char *)s);
    return -1;
}

static const char *control_name(unsigned char c)
{
    return c == '\n' ? "a newline" : c == '\r' ? "a carriage return" : "a control character";
}

/* Seconds from an environment variable: unset or empty gives `fallback`; anything else must be a
 * plain decimal number above 0 and at most `most` (or exactly 0 where `zero_means` names what 0
 * means). "inf", "nan", "1e999", "0x10" or "10 minutes" are refused, never half-read.
 * Returns 0, or -1 with err set. */
static int env_seconds(const char *name, double fallback, double most, const char *zero_means, double *out,
                       char *err, size_t errlen)
{
    const char *v = getenv(name);
    *out = fallback;
    if (!v || !*v)
        return 0;
    int ok = strspn(v, "0123456789.eE+- \t") == strlen(v);
    double d = 0.0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        d = strtod(v, &end);
        while (end && (*end == ' ' || *end == '\t'))
            ++end;
        ok = end && end != v && *end == '\0' && errno == 0 && isfinite(d) &&
             ((d > 0.0 && d <= most) || (zero_means && d == 0.0));
    }
    if (!ok) {
        char shown[300];
        shown_value(v, shown, sizeof(shown));
        if (zero_means)
            set_err(err, errlen, "%s='%s' is not a number of seconds from 0 (%s) to %g; fix or unset it", name,
                    shown, zero_means, most);
        else
            set_err(err, errlen, "%s='%s' is not a number of seconds above 0 and at most %g; fix or unset it",
                    name, shown, most);
        return -1;
    }
    *out = d;
    return 0;
}

/* A folder from XDG_RUNTIME_DIR or TMPDIR, used only when it is an absolute path to a folder
 * (a relative one would name different places in the host and in the worker). */
static const char *env_folder(const char *name)
{
    const char *v = getenv(name);
    struct stat st;
    if (!v || v[0] != '/' || first_control(v) >= 0 || stat(v, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return v;
}

int gs_socket_path(char *out, size_t outlen, char *err, size_t errlen)
{
    const char *explicit_path = getenv("GSRENDER_SOCKET");
    struct sockaddr_un probe;
    int n;
    if (explicit_path && *explicit_path) {
        char shown[300];
        shown_value(explicit_path, shown, sizeof(shown));
        long bad = first_control(explicit_path);
        if (explicit_path[0] != '/' || bad >= 0 || strlen(explicit_path) >= sizeof(probe.sun_path)) {
            set_err(err, errlen, "GSRENDER_SOCKET='%s' %s; fix or unset it", shown,
                    explicit_path[0] != '/' ? "is not an absolute path"
                    : bad >= 0 ? "holds a control character"
                               : "is longer than the 107 bytes a socket path may have");
            return -1;
        }
        n = snprintf(out, outlen, "%s", explicit_path);
    } else {
        const char *rt = env_folder("XDG_RUNTIME_DIR");
        if (rt) {
            n = snprintf(out, outlen, "%s/gsrender/worker.sock", rt);
        } else {
            const char *tmp = env_folder("TMPDIR");
            n = snprintf(out, outlen, "%s/gsrender-%u/worker.sock", tmp ? tmp : "/tmp", (unsigned)getuid());
        }
    }
    if (n <= 0 || (size_t)n >= outlen || (size_t)n >= sizeof(probe.sun_path)) {
        set_err(err, errlen, "the worker socket path is too long (set GSRENDER_SOCKET to a shorter path)");
        return -1;
    }
    return 0;
}

/* The worker command: GSRENDER_WORKER, else the built-in default. It is shell text (it may hold
 * arguments or a wrapper), but one line: a newline would run its first line in the foreground. */
static int worker_command(const char **cmd, char *err, size_t errlen)
{
    const char *v = getenv("GSRENDER_WORKER");
    *cmd = GSRENDER_WORKER_DEFAULT;
    if (!v || !*v)
        return 0;
    char shown[300];
    shown_value(v, shown, sizeof(shown));
    long bad = first_control(v);
    if (bad >= 0) {
        set_err(err, errlen, "GSRENDER_WORKER='%s' holds %s at byte %ld; give the worker command on one line",
                shown, control_name((unsigned char)v[bad]), bad + 1);
        return -1;
    }
    if (strspn(v, " \t") == strlen(v)) {
        set_err(err, errlen, "GSRENDER_WORKER='%s' is blank; unset it or give the worker command", shown);
        return -1;
    }
    if (strlen(v) > 3000) {
        set_err(err, errlen, "GSRENDER_WORKER is %zu bytes long; at most 3000", strlen(v));
        return -1;
    }
    *cmd = v;
    return 0;
}

/* dirname of the socket, created 0700 if missing (the worker does the same), then checked:
 * it must be a real folder (not a symlink) of this user that nobody else can write. Without
 * XDG_RUNTIME_DIR the folder is /tmp/gsrender-UID, a name any local user can take first: a
 * folder of theirs could hold a fake worker (which would get every frame) or a worker.log
 * symlink to one of our files (which we would truncate). Returns 0, or -1 with err set. */
static int ensure_socket_dir(const char *sock_path, char *dir, size_t dirlen, char *err, size_t errlen)
{
    snprintf(dir, dirlen, "%s", sock_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, dirlen, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create the worker folder %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        set_err(err, errlen, "cannot use the worker folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "refusing the worker folder %s: it is not a folder (a symlink?)", dir);
        return -1;
    }
    if (st.st_uid != getuid()) {
        set_err(err, errlen,
                "refusing the worker folder %s: it belongs to user %u, not to you (%u); remove it or set "
                "GSRENDER_SOCKET to a path in a folder of yours",
                dir, (unsigned)st.st_uid, (unsigned)getuid());
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        set_err(err, errlen, "refusing the worker folder %s: other users can write to it (mode %03o); chmod 700 it",
                dir, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

/* 0 when the process at the other end of a connected socket runs as this user. */
static int peer_is_me(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return -1;
    return cred.uid == getuid() ? 0 : -1;
}

/* ------------------------------------------------------------------ shared memory */

int gs_shm_create(GsShm *shm, size_t in_bytes, size_t out_bytes, char *err, size_t errlen)
{
    memset(shm, 0, sizeof(*shm));
    shm->in_offset = 0;
    shm->out_offset = (in_bytes + 63) / 64 * 64;
    shm->size = shm->out_offset + out_bytes;
    if (shm->size == 0)
        shm->size = 64;
    unsigned count = atomic_fetch_add(&g_shm_counter, 1u) + 1u;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(shm->name, sizeof(shm->name), "/gsrender-%ld-%u-%lx", (long)getpid(), count,
             (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20)));
    int fd = shm_open(shm->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen, "cannot create shared memory %s: %s", shm->name, strerror(errno));
        shm->name[0] = '\0';
        return -1;
    }
    /* Reserve the pages now: on a full /dev/shm a plain ftruncate would let the first write
     * kill the host with SIGBUS instead of giving an error here. */
    int rc = posix_fallocate(fd, 0, (off_t)shm->size);
    if (rc == EINVAL || rc == EOPNOTSUPP)
        rc = ftruncate(fd, (off_t)shm->size) == 0 ? 0 : errno;
    if (rc != 0) {
        set_err(err, errlen, "not enough shared memory (/dev/shm) for %.1f MiB: %s",
                (double)shm->size / (1024.0 * 1024.0), strerror(rc));
        close(fd);
        shm_unlink(shm->name);
        shm->name[0] = '\0';
        return -1;
    }
    void *base = mmap(NULL, shm->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int map_errno = errno;
    close(fd);
    if (base == MAP_FAILED) {
        set_err(err, errlen, "cannot map shared memory: %s", strerror(map_errno));
        shm_unlink(shm->name);
        shm->name[0] = '\0';
        return -1;
    }
    shm->base = base;
    return 0;
}

void gs_shm_destroy(GsShm *shm)
{
    if (shm->base)
        munmap(shm->base, shm->size);
    if (shm->name[0])
        shm_unlink(shm->name);
    shm->base = NULL;
    shm->name[0] = '\0';
}

/* ------------------------------------------------------------------ socket I/O */

static int gs_connect(const char *path)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (peer_is_me(fd) != 0) { /* another user's process: it must never see a request */
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

enum { IO_OK = 0, IO_GONE = -1, IO_ABORTED = -2, IO_PROTOCOL = -3, IO_TIMEOUT = -4 };

static int send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        /* MSG_NOSIGNAL: a dead worker must not raise SIGPIPE in the host. */
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return IO_GONE;
        }
        p += k;
        n -= (size_t)k;
    }
    return IO_OK;
}

/* deadline: CLOCK_MONOTONIC seconds, 0 = wait as long as the worker works (renders may load models). */
static int recv_all(int fd, void *buf, size_t n, GsAbortFn abort_fn, void *abort_arg, double deadline)
{
    char *p = buf;
    while (n) {
        if (deadline > 0 && now_seconds() > deadline)
            return IO_TIMEOUT;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, GS_POLL_MS);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return IO_GONE;
        }
        if (r == 0) {
            if (abort_fn && abort_fn(abort_arg))
                return IO_ABORTED;
            continue;
        }
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return IO_GONE;
        }
        if (k == 0)
            return IO_GONE; /* the worker closed the connection: it died or is exiting */
        p += k;
        n -= (size_t)k;
    }
    return IO_OK;
}

/* One request/reply turn. *reply is malloc'd (NUL terminated) on IO_OK. */
static int exchange(int fd, const char *json, char **reply, GsAbortFn abort_fn, void *abort_arg, double deadline)
{
    size_t len = strlen(json);
    unsigned char head[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                             (unsigned char)len};
    int rc = send_all(fd, head, 4);
    if (rc == IO_OK)
        rc = send_all(fd, json, len);
    if (rc != IO_OK)
        return rc;
    rc = recv_all(fd, head, 4, abort_fn, abort_arg, deadline);
    if (rc != IO_OK)
        return rc;
    uint32_t size = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | head[3];
    if (size > GS_MAX_MESSAGE)
        return IO_PROTOCOL;
    char *body = malloc((size_t)size + 1);
    if (!body)
        return IO_PROTOCOL;
    rc = recv_all(fd, body, size, abort_fn, abort_arg, deadline);
    if (rc != IO_OK) {
        free(body);
        return rc;
    }
    body[size] = '\0';
    *reply = body;
    return IO_OK;
}

/* ------------------------------------------------------------------ JSON (just enough) */

typedef struct Buf {
    char *p;
    size_t len, cap;
    int overflow;
} Buf;

static void buf_add(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_add(Buf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    b->len += (size_t)n;
}

static void buf_str(Buf *b, const char *s)
{
    buf_add(b, "\"");
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; ++c) {
        if (*c == '"' || *c == '\\')
            buf_add(b, "\\%c", *c);
        else if (*c < 0x20)
            buf_add(b, "\\u%04x", *c);
        else
            buf_add(b, "%c", *c);
    }
    buf_add(b, "\"");
}

static void buf_num(Buf *b, double v)
{
    buf_add(b, "%.9g", isfinite(v) ? v : 0.0);
}

static int build_render_json(const GsShm *shm, const GsRenderRequest *req, char *out, size_t cap)
{
    const GsSettings *s = req->settings;
    Buf b = {out, 0, cap, 0};
    buf_add(&b, "{\"version\":%d,\"op\":\"render\",\"shm\":", GS_PROTOCOL_VERSION);
    buf_str(&b, shm->name);
    buf_add(&b, ",\"size\":%zu,\"in_offset\":%zu,\"out_offset\":%zu", shm->size, shm->in_offset, shm->out_offset);
    buf_add(&b, ",\"width\":%d,\"height\":%d,\"window\":[%d,%d,%d,%d]", req->width, req->height, req->x0, req->y0,
            req->x1, req->y1);
    buf_add(&b, ",\"settings\":{\"model\":");
    buf_str(&b, s->model);
    buf_add(&b, ",\"backend\":");
    buf_str(&b, s->backend);
    buf_add(&b, ",\"keyer\":");
    buf_str(&b, s->keyer);
    buf_add(&b, ",\"despill\":");
    buf_num(&b, s->despill);
    buf_add(&b, ",\"despot\":%d", s->despot);
    buf_add(&b, ",\"output\":");
    buf_str(&b, s->output);
    buf_add(&b, ",\"composite_colour\":[");
    for (int i = 0; i < 3; ++i) {
        buf_add(&b, i ? "," : "");
        buf_num(&b, s->composite[i]);
    }
    buf_add(&b, "],\"screen_colour\":");
    if (s->screen_override) {
        buf_add(&b, "[");
        for (int i = 0; i < 3; ++i) {
            buf_add(&b, i ? "," : "");
            buf_num(&b, s->screen[i]);
        }
        buf_add(&b, "]");
    } else {
        buf_add(&b, "null");
    }
    buf_add(&b, ",\"colorspace\":");
    buf_str(&b, s->colorspace);
    buf_add(&b, ",\"source_depth\":");
    buf_str(&b, s->source_depth);
    buf_add(&b, ",\"invert_garbage\":%s}", s->invert_garbage ? "true" : "false");
    static const char *const names[GS_N_INPUTS] = {"garbage", "core", "clean_plate"};
    int first = 1;
    for (int i = 0; i < GS_N_INPUTS; ++i) {
        if (req->extra_offset[i] < 0)
            continue;
        buf_add(&b, "%s", first ? ",\"inputs\":{" : ",");
        buf_add(&b, "\"%s\":%lld", names[i], req->extra_offset[i]);
        first = 0;
    }
    buf_add(&b, "%s", first ? "}" : "}}");
    return b.overflow ? -1 : 0;
}

/* The protocol is UTF-8 JSON: a setting that is not UTF-8 (a Latin-1 file name) is named here,
 * instead of travelling as a request the worker cannot read. */
static int check_strings(const GsSettings *s, char *err, size_t errlen)
{
    const struct {
        const char *label, *value;
    } fields[] = {{"Model path", s->model},       {"Colour Space Name", s->colorspace}, {"backend", s->backend},
                  {"keyer", s->keyer},            {"output", s->output},                {"source depth", s->source_depth}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); ++i) {
        const unsigned char *p = (const unsigned char *)(fields[i].value ? fields[i].value : "");
        for (size_t k = 0; p[k];) {
            int n = utf8_sequence(p + k);
            if (n == 0) {
                char shown[300];
                shown_value(fields[i].value, shown, sizeof(shown));
                set_err(err, errlen,
                        "the %s is not valid UTF-8 (byte 0x%02X at byte %zu of '%s'); rename the file or folder",
                        fields[i].label, p[k], k + 1, shown);
                return -1;
            }
            k += (size_t)n;
        }
    }
    return 0;
}

/* Replies start with the "ok" member, written compactly by the worker (protocol.encode). */
static int reply_ok(const char *reply)
{
    return strncmp(reply, "{\"ok\":true", 10) == 0;
}

/* The "error" string of a reply, unescaped (\uXXXX outside ASCII becomes '?'). */
static void reply_error(const char *reply, char *err, size_t errlen)
{
    const char *p = strstr(reply, "\"error\":\"");
    if (!p) {
        set_err(err, errlen, "the gsrender worker refused the frame without saying why");
        return;
    }
    p += 9;
    size_t n = 0;
    while (*p && *p != '"' && n + 1 < errlen) {
        char c = *p++;
        if (c == '\\' && *p) {
            char e = *p++;
            switch (e) {
            case 'n': c = ' '; break;
            case 't': c = ' '; break;
            case 'r': c = ' '; break;
            case 'b': case 'f': c = ' '; break;
            case 'u': {
                unsigned v = 0;
                int k = 0;
                for (; k < 4 && *p; ++k, ++p) {
                    char h = *p;
                    v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                }
                c = (v >= 0x20 && v < 0x7f) ? (char)v : '?';
                break;
            }
            default: c = e; break;
            }
        }
        err[n++] = c;
    }
    err[n] = '\0';
}

/* ------------------------------------------------------------------ starting the worker */

/* Connect and make sure a live worker answers: after a crash the old socket may still accept
 * for a moment (a listener being torn down), and a render sent there would be lost too. */
static int connect_alive(const char *path, GsAbortFn abort_fn, void *abort_arg)
{
    int fd = gs_connect(path);
    if (fd < 0)
        return -1;
    char ping[64], *reply = NULL;
    snprintf(ping, sizeof(ping), "{\"version\":%d,\"op\":\"ping\"}", GS_PROTOCOL_VERSION);
    int io = exchange(fd, ping, &reply, abort_fn, abort_arg, now_seconds() + 10.0);
    int ok = io == IO_OK && reply_ok(reply);
    free(reply);
    if (ok)
        return fd;
    close(fd);
    errno = ECONNREFUSED;
    return -1;
}

/* Last non-empty line of the worker log: usually says why a start failed. */
static void last_log_line(const char *log_path, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd = open(log_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    char tail[2048];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof(tail) - 1 ? end - (off_t)sizeof(tail) + 1 : 0;
    ssize_t n = pread(fd, tail, sizeof(tail) - 1, start);
    close(fd);
    if (n <= 0)
        return;
    tail[n] = '\0';
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' '))
        tail[--n] = '\0';
    const char *line = strrchr(tail, '\n');
    line = line ? line + 1 : tail;
    size_t k = 0;
    for (; line[k] && k + 1 < outlen; ++k)
        out[k] = line[k];
    out[k] = '\0';
}

static char **worker_environment(void)
{
    /* The host's embedded Python (PYTHONHOME) must not leak into the worker's Python. */
    size_t n = 0;
    while (environ && environ[n])
        ++n;
    char **env = calloc(n + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
        if (strncmp(environ[i], "PYTHONHOME=", 11) == 0)
            continue;
        env[k++] = environ[i];
    }
    env[k] = NULL;
    return env;
}

/* The start-up shell's script, fixed text: it runs `$2 --socket "$1"` (the worker command, then
 * the socket path as an argument, never quoted into the text) in a second shell in the
 * background and exits at once, whatever the command holds ('#', ';', a trailing '&'): the
 * host never waits for the worker. */
static const char kStartScript[] = "/bin/sh -c \"$2\"' --socket \"$1\"' gsrender-worker \"$1\" &";

/* Start the worker detached from the host: the start-up shell exits at once (reaped here), so
 * the worker is never the host's child (no zombie, no waitpid on a pid the host may reuse). The
 * write end of a pipe travels to it as fd 3; *alive_fd gets the read end, which reads EOF when
 * the worker has exited - how a failed start is noticed without waiting for the timeout. */
static int spawn_worker(const char *cmd, const char *sock_path, const char *log_path, int *alive_fd, char *err,
                        size_t errlen)
{

    /* Keep the log from growing without bound: start afresh past 1 MiB. */
    struct stat st;
    int trunc = (lstat(log_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (1 << 20)) ? O_TRUNC : 0;
    /* O_NOFOLLOW: a worker.log that is a symlink is never followed, let alone truncated. */
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | trunc, 0600);
    if (logfd >= 0) {
        char line[512];
        time_t t = time(NULL);
        struct tm tmv;
        char when[64] = "";
        if (localtime_r(&t, &tmv))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tmv);
        int len = snprintf(line, sizeof(line), "--- %s GsKey.ofx (pid %ld) starts: %s --socket %s\n", when,
                           (long)getpid(), cmd, sock_path);
        if (len > 0 && write(logfd, line, (size_t)len) < 0) {
            /* the log is a courtesy; a failed write changes nothing */
        }
        close(logfd);
    }

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        set_err(err, errlen, "cannot start the gsrender worker: pipe: %s", strerror(errno));
        return -1;
    }
    if (pipefd[1] <= 3) { /* keep the source of the dup2 below clear of fds 0-3 */
        int high = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 10);
        if (high >= 0) {
            close(pipefd[1]);
            pipefd[1] = high;
        }
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 3); /* the liveness pipe (not close-on-exec) */
#ifdef GS_HAVE_ADDCLOSEFROM
    /* Host descriptors (its sockets, files) must not stay open in a long-lived worker. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
#endif
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
    flags |= POSIX_SPAWN_SETSID; /* its own session: the host's Ctrl-C is not the worker's */
#endif
    posix_spawnattr_setflags(&attr, flags);
    sigset_t mask, defaults;
    sigemptyset(&mask);
    posix_spawnattr_setsigmask(&attr, &mask);
    sigemptyset(&defaults);
    for (int s = 1; s < 32; ++s)
        if (s != SIGKILL && s != SIGSTOP)
            sigaddset(&defaults, s);
    posix_spawnattr_setsigdefault(&attr, &defaults);

    char *argv[] = {"/bin/sh", "-c", (char *)kStartScript, "gsrender-worker", (char *)sock_path, (char *)cmd, NULL};
    char **env = worker_environment();
    pid_t pid = 0;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env ? env : environ);
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        set_err(err, errlen, "cannot start the gsrender worker (%s): %s", cmd, strerror(rc));
        return -1;
    }
    /* The shell only forks the worker and exits; ECHILD means the host reaped it first. */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *alive_fd = pipefd[0];
    return 0;
}

/* 1 once every copy of the pipe's write end is closed, i.e. the worker has exited. */
static int worker_exited(int alive_fd)
{
    struct pollfd pfd = {alive_fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    char c;
    return read(alive_fd, &c, 1) == 0;
}

/* Connect, starting a worker when nobody answers. Returns a socket, or -1 with err set. */
static int connect_or_start(const char *sock_path, const char *cmd, double timeout, int verify, GsAbortFn abort_fn,
                            void *abort_arg, int *aborted, char *err, size_t errlen)
{
    *aborted = 0;
    char dir[4096], log_path[4200];
    /* The folder is checked before connecting: a socket in someone else's folder is theirs. */
    if (ensure_socket_dir(sock_path, dir, sizeof(dir), err, errlen) != 0)
        return -1;
    snprintf(log_path, sizeof(log_path), "%s/worker.log", dir);
    int fd = verify ? connect_alive(sock_path, abort_fn, abort_arg) : gs_connect(sock_path);
    if (fd >= 0)
        return fd;
    if (errno == EPERM) {
        set_err(err, errlen, "refusing the worker at %s: it runs as another user", sock_path);
        return -1;
    }

    /* One start at a time per process: other render threads wait here, then connect. */
    pthread_mutex_lock(&g_spawn_lock);
    fd = connect_alive(sock_path, abort_fn, abort_arg);
    if (fd >= 0 || errno == EPERM) {
        pthread_mutex_unlock(&g_spawn_lock);
        if (fd < 0)
            set_err(err, errlen, "refusing the worker at %s: it runs as another user", sock_path);
        return fd;
    }
    int alive_fd = -1;
    if (spawn_worker(cmd, sock_path, log_path, &alive_fd, err, errlen) != 0) {
        pthread_mutex_unlock(&g_spawn_lock);
        return -1;
    }
    double deadline = now_seconds() + timeout;
    int exited = 0, foreign = 0;
    while (now_seconds() < deadline) {
        fd = connect_alive(sock_path, abort_fn, abort_arg);
        if (fd >= 0)
            break;
        if (errno == EPERM) {
            foreign = 1;
            break;
        }
        if (!exited && worker_exited(alive_fd)) {
            /* Failed, or found another worker serving this socket (then it answers soon). */
            exited = 1;
            deadline = now_seconds() + 1.0;
        }
        if (abort_fn && abort_fn(abort_arg)) {
            *aborted = 1;
            break;
        }
        sleep_ms(50);
    }
    close(alive_fd);
    pthread_mutex_unlock(&g_spawn_lock);
    if (fd >= 0 || *aborted)
        return fd;

    char last[512];
    last_log_line(log_path, last, sizeof(last));
    if (foreign)
        set_err(err, errlen, "refusing the worker at %s: it runs as another user", sock_path);
    else if (exited)
        set_err(err, errlen,
                "the gsrender worker ('%s') exited during start-up: %s (log: %s; set GSRENDER_WORKER to the "
                "full command, e.g. '/path/to/venv/bin/gsrender serve')",
                cmd, last[0] ? last : "no output", log_path);
    else
        set_err(err, errlen, "the gsrender worker ('%s') did not open %s within %g s (log: %s)", cmd, sock_path,
                timeout, log_path);
    return -1;
}

/* ------------------------------------------------------------------ render */

int gs_render(const GsShm *shm, const GsRenderRequest *req, GsAbortFn abort_fn, void *abort_arg, char *err,
              size_t errlen)
{
    /* Every environment value first: a bad one is one clear message, before anything starts. */
    char sock_path[512];
    const char *cmd = NULL;
    double worker_timeout = 0.0, render_timeout = 0.0;
    if (gs_socket_path(sock_path, sizeof(sock_path), err, errlen) != 0 || worker_command(&cmd, err, errlen) != 0 ||
        env_seconds("GSRENDER_WORKER_TIMEOUT", 60.0, 3600.0, NULL, &worker_timeout, err, errlen) != 0 ||
        env_seconds("GSRENDER_RENDER_TIMEOUT", 0.0, 86400.0, "no limit", &render_timeout, err, errlen) != 0)
        return GS_FAILED;
    if (check_strings(req->settings, err, errlen) != 0)
        return GS_FAILED;
    char *json = malloc(32768);
    if (!json) {
        set_err(err, errlen, "out of memory");
        return GS_FAILED;
    }
    if (build_render_json(shm, req, json, 32768) != 0) {
        free(json);
        set_err(err, errlen, "render settings too long (model path or colour space name)");
        return GS_FAILED;
    }
    int result = GS_FAILED;
    for (int attempt = 0; attempt < 2; ++attempt) {
        int aborted = 0;
        /* first try: the plain fast path; after a crash, only a worker that answers a ping */
        int fd = connect_or_start(sock_path, cmd, worker_timeout, attempt > 0, abort_fn, abort_arg, &aborted, err,
                                  errlen);
        if (aborted) {
            result = GS_ABORTED;
            break;
        }
        if (fd < 0) {
            result = GS_FAILED;
            break;
        }
        char *reply = NULL;
        int io = exchange(fd, json, &reply, abort_fn, abort_arg,
                          render_timeout > 0 ? now_seconds() + render_timeout : 0.0);
        close(fd);
        if (io == IO_OK) {
            if (reply_ok(reply)) {
                result = GS_OK;
            } else {
                reply_error(reply, err, errlen);
                result = GS_FAILED;
            }
            free(reply);
            break;
        }
        if (io == IO_ABORTED) {
            result = GS_ABORTED;
            break;
        }
        if (io == IO_TIMEOUT) {
            set_err(err, errlen, "the gsrender worker did not answer within %.0f s (GSRENDER_RENDER_TIMEOUT)",
                    render_timeout);
            result = GS_FAILED;
            break;
        }
        if (io == IO_PROTOCOL) {
            set_err(err, errlen, "the gsrender worker sent a malformed reply (plugin and worker versions differ?)");
            result = GS_FAILED;
            break;
        }
        /* IO_GONE: the worker died (or was exiting) during the request: restart it once. */
        set_err(err, errlen,
                "the gsrender worker stopped while rendering this frame, and again after a restart; see "
                "worker.log beside %s",
                sock_path);
        result = GS_FAILED;
    }
    free(json);
    return result;
}
