/*
 * gskey_client.h - the plugin's side of the gsrender worker protocol (PROTOCOL.md).
 *
 * Kept apart from the OFX code so the bridge (socket, shared memory, starting and
 * restarting the worker) can be read and reasoned about on its own.
 */
#ifndef GSKEY_CLIENT_H
#define GSKEY_CLIENT_H

#include <stddef.h>

#define GS_PROTOCOL_VERSION 2
#define GS_ERR_LEN 1024
#define GS_DESPOT_DEFAULT 32 /* gsrender --despot's default, pixels (engine/despot.py DEFAULT_SIZE) */
#define GS_DESPOT_MAX 4096   /* ... and its largest value (MAX_SIZE) */

/* Every setting that changes pixels; strings are borrowed for the call. */
typedef struct GsSettings {
    const char *model;     /* "" = the model bundled with gsrender */
    const char *backend;   /* auto, onnxruntime, cuda, torch, tensorrt */
    const char *keyer;     /* neural, classic */
    double despill;        /* 0..1 */
    int despot;            /* 0..GS_DESPOT_MAX pixels, 0 = off */
    const char *output;    /* premultiplied, straight, matte, composite */
    double composite[3];   /* background for "composite", input colour space */
    int screen_override;   /* 0: estimate the screen colour per frame */
    double screen[3];      /* linear working-space RGB, like the CLI's --screen-colour */
    const char *colorspace;   /* "" = auto from source_depth */
    const char *source_depth; /* float, half, short, byte */
    int invert_garbage;       /* the garbage matte is 0 on the screen */
} GsSettings;

/* A shared-memory file in /dev/shm: the frame in, the render window out. */
typedef struct GsShm {
    char name[96];
    void *base;
    size_t size;
    size_t in_offset;
    size_t out_offset;
} GsShm;

/* Optional inputs (the GarbageMatte, CoreMatte and CleanPlate clips), in protocol order. */
enum { GS_IN_GARBAGE = 0, GS_IN_CORE = 1, GS_IN_CLEAN = 2, GS_N_INPUTS = 3 };

/* A render request: full frame size, window in top-down frame coordinates (half open);
 * extra_offset[i]: where optional input i starts in the shared memory (W x H float32, 1 channel
 * for mattes, RGB for the clean plate, rows top-down), or -1 when its clip is not connected. */
typedef struct GsRenderRequest {
    int width, height;
    int x0, y0, x1, y1;
    const GsSettings *settings;
    long long extra_offset[GS_N_INPUTS];
} GsRenderRequest;

/* Polled while waiting for the worker; non-zero aborts the wait. */
typedef int (*GsAbortFn)(void *arg);

/* Result codes of gs_render. */
enum { GS_OK = 0, GS_FAILED = 1, GS_ABORTED = 2 };

int gs_shm_create(GsShm *shm, size_t in_bytes, size_t out_bytes, char *err, size_t errlen);
void gs_shm_destroy(GsShm *shm);

/* Render through the worker, starting it when needed and restarting it once if it dies.
 * Returns GS_OK, GS_ABORTED, or GS_FAILED with a one-line message in err. */
int gs_render(const GsShm *shm, const GsRenderRequest *req, GsAbortFn abort_fn, void *abort_arg, char *err,
              size_t errlen);

/* The socket path both sides agree on (GSRENDER_SOCKET, XDG_RUNTIME_DIR, /tmp/gsrender-UID);
 * -1 with a one-line message in err when GSRENDER_SOCKET is not a usable absolute path. */
int gs_socket_path(char *out, size_t outlen, char *err, size_t errlen);

#endif /* GSKEY_CLIENT_H */
