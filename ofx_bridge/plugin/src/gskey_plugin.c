/*
 * gskey_plugin.c - GsKey, the OpenFX image effect of the gsrender green-screen keyer.
 *
 * The plugin is a thin bridge: it fetches the whole source frame from the host (the
 * keyer's per-frame guides need all of it) with any optional clip over all of it, hands
 * them to the gsrender worker through shared memory, and copies back only the render
 * window. The worker runs the same
 * engine code as the `gsrender` CLI, so the plugin's pixels equal the CLI's.
 *
 * Coordinates: OFX images are bottom-up (row y1 first); gsrender frames are top-down.
 * The plugin flips rows on the way in and out, so the worker keys exactly the frame a
 * file reader would have produced.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gskey_client.h"
#include "ofx_abi.h"

#define PLUGIN_ID "org.gsrender.GsKey"
#define PLUGIN_VERSION_MAJOR 1
#define PLUGIN_VERSION_MINOR 0
#define MAX_FRAME_PIXELS ((size_t)1 << 28) /* 16k x 16k */

/* ------------------------------------------------------------------ host suites */

static OfxHost *g_host;
static const OfxPropertySuiteV1 *g_prop;
static const OfxImageEffectSuiteV1 *g_effect;
static const OfxParameterSuiteV1 *g_param;
static const OfxMemorySuiteV1 *g_memory;
static const OfxMultiThreadSuiteV1 *g_thread;
static const OfxMessageSuiteV1 *g_msg;
static const OfxMessageSuiteV2 *g_msg2;

/* ------------------------------------------------------------------ parameters */

typedef struct Choice {
    const char *label;
    const char *value;
} Choice;

static const Choice kKeyers[] = {
    {"Neural network", "neural"},
    {"Classic colour difference", "classic"},
};
static const Choice kBackends[] = {
    {"Auto", "auto"},
    {"ONNX Runtime (CPU)", "onnxruntime"},
    {"ONNX Runtime (CUDA)", "cuda"},
    {"PyTorch", "torch"},
    {"TensorRT", "tensorrt"},
};
static const Choice kOutputs[] = {
    {"Premultiplied", "premultiplied"},
    {"Straight (unpremultiplied)", "straight"},
    {"Matte", "matte"},
    {"Composite over colour", "composite"},
};
/* NULL value: take the free-text colour space name parameter. */
static const Choice kColourspaces[] = {
    {"Auto (float: linear Rec.709, 8/16-bit: sRGB)", ""},
    {"Linear Rec.709 (sRGB)", "lin_rec709"},
    {"sRGB encoded Rec.709", "srgb_tx"},
    {"ACEScg", "ACEScg"},
    {"ACES2065-1", "ACES2065-1"},
    {"Linear Rec.2020", "Linear Rec.2020"},
    {"Linear P3-D65", "Linear P3-D65"},
    {"Other (name below)", NULL},
};
#define NCHOICES(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define P_KEYER "keyer"
#define P_MODEL "model"
#define P_BACKEND "backend"
#define P_DESPILL "despill"
#define P_DESPOT "despot"
#define P_OUTPUT "output"
#define P_COMPOSITE "compositeColour"
#define P_SCREEN_OVERRIDE "screenColourOverride"
#define P_SCREEN "screenColour"
#define P_COLOURSPACE "colourspace"
#define P_COLOURSPACE_NAME "colourspaceName"
#define P_INVERT_GARBAGE "invertGarbage"

/* Optional clips of the General context, in the protocol's order (GS_IN_*). */
static const char *const kExtraClips[GS_N_INPUTS] = {"GarbageMatte", "CoreMatte", "CleanPlate"};

typedef struct Instance {
    OfxImageClipHandle src, dst;
    OfxImageClipHandle extra[GS_N_INPUTS]; /* NULL in the Filter context */
    OfxParamHandle keyer, model, backend, despill, despot, output, composite, screen_override, screen, colourspace,
        colourspace_name, invert_garbage;
    /* The persistent error (under g_message_lock): a render that succeeds clears it only when
     * something changed since the failure (a parameter or clip, the frame, a new render
     * sequence); otherwise it is another window of the same failed frame, and the failure
     * must stay visible. */
    unsigned changes;     /* InstanceChanged and BeginSequenceRender calls so far */
    int failed;           /* an error is posted */
    double failed_time;   /* ... for this frame */
    unsigned failed_changes; /* ... with these settings */
} Instance;

static pthread_mutex_t g_message_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ small helpers */

static void post_error(OfxImageEffectHandle effect, const char *text)
{
    if (g_msg2 && g_msg2->setPersistentMessage)
        g_msg2->setPersistentMessage(effect, kOfxMessageError, "gsrender.error", "%s", text);
    else if (g_msg && g_msg->message)
        g_msg->message(effect, kOfxMessageError, "gsrender.error", "%s", text);
    fprintf(stderr, "GsKey: %s\n", text);
}

/* A warning that stays visible until the next clean render: persistent where the host has
 * message suite v2, the host's log otherwise (a v1 warning would open a dialog per frame). */
static void post_warning(OfxImageEffectHandle effect, const char *text)
{
    if (g_msg2 && g_msg2->setPersistentMessage)
        g_msg2->setPersistentMessage(effect, kOfxMessageWarning, "gsrender.partialInput", "%s", text);
    else if (g_msg && g_msg->message)
        g_msg->message(effect, kOfxMessageLog, "gsrender.partialInput", "%s", text);
    fprintf(stderr, "GsKey: warning: %s\n", text);
}

static void clear_error(OfxImageEffectHandle effect)
{
    if (g_msg2 && g_msg2->clearPersistentMessage)
        g_msg2->clearPersistentMessage(effect);
}

/* A render failed: post why, and remember it so that other windows of the frame keep it. */
static void render_failed(OfxImageEffectHandle effect, Instance *in, double time, const char *text)
{
    pthread_mutex_lock(&g_message_lock);
    in->failed = 1;
    in->failed_time = time;
    in->failed_changes = in->changes;
    post_error(effect, text);
    pthread_mutex_unlock(&g_message_lock);
}

/* A render succeeded: clear the error, unless it belongs to another window of this same frame
 * and settings (the host then shows a failed frame, and the message says why); `warning`: about
 * inputs the host gave only in part, posted where no error stays. */
static void render_succeeded(OfxImageEffectHandle effect, Instance *in, double time, const char *warning)
{
    pthread_mutex_lock(&g_message_lock);
    int keep = in->failed && in->failed_time == time && in->failed_changes == in->changes;
    if (!keep) {
        in->failed = 0;
        clear_error(effect);
        if (warning[0])
            post_warning(effect, warning);
    } else if (warning[0]) {
        fprintf(stderr, "GsKey: warning: %s\n", warning);
    }
    pthread_mutex_unlock(&g_message_lock);
}

/* Something the renders depend on changed: a later clean render clears a posted error. */
static void note_change(Instance *in)
{
    pthread_mutex_lock(&g_message_lock);
    in->changes++;
    pthread_mutex_unlock(&g_message_lock);
}

static Instance *get_instance(OfxImageEffectHandle effect)
{
    OfxPropertySetHandle props = NULL;
    void *data = NULL;
    if (g_effect->getPropertySet(effect, &props) != kOfxStatOK)
        return NULL;
    if (g_prop->propGetPointer(props, kOfxPropInstanceData, 0, &data) != kOfxStatOK)
        return NULL;
    return (Instance *)data;
}

static int get_choice(OfxParamHandle p, OfxTime t, int n)
{
    int v = 0;
    if (!p || g_param->paramGetValueAtTime(p, t, &v) != kOfxStatOK)
        return 0;
    return v < 0 ? 0 : (v >= n ? n - 1 : v);
}

static int get_bool(OfxParamHandle p, OfxTime t)
{
    int v = 0;
    if (p)
        g_param->paramGetValueAtTime(p, t, &v);
    return v != 0;
}

static double get_double(OfxParamHandle p, OfxTime t, double fallback)
{
    double v = fallback;
    if (!p || g_param->paramGetValueAtTime(p, t, &v) != kOfxStatOK)
        return fallback;
    return v;
}

static int get_int(OfxParamHandle p, OfxTime t, int fallback)
{
    int v = fallback;
    if (!p || g_param->paramGetValueAtTime(p, t, &v) != kOfxStatOK)
        return fallback;
    return v;
}

static void get_rgb(OfxParamHandle p, OfxTime t, double rgb[3])
{
    if (p)
        g_param->paramGetValueAtTime(p, t, &rgb[0], &rgb[1], &rgb[2]);
}

/* String values are host-owned and short-lived: copy them at once. */
static void get_string(OfxParamHandle p, OfxTime t, char *out, size_t outlen)
{
    char *v = NULL;
    out[0] = '\0';
    if (p && g_param->paramGetValueAtTime(p, t, &v) == kOfxStatOK && v)
        snprintf(out, outlen, "%s", v);
}

/* ------------------------------------------------------------------ describe */

static OfxStatus action_describe(OfxImageEffectHandle effect)
{
    OfxPropertySetHandle p = NULL;
    if (g_effect->getPropertySet(effect, &p) != kOfxStatOK)
        return kOfxStatErrBadHandle;
    g_prop->propSetString(p, kOfxPropLabel, 0, "GsKey");
    g_prop->propSetString(p, kOfxPropShortLabel, 0, "GsKey");
    g_prop->propSetString(p, kOfxPropLongLabel, 0, "GsKey (gsrender neural keyer)");
    g_prop->propSetString(p, kOfxPropPluginDescription, 0,
                          "Neural green-screen keyer. Renders through a local gsrender worker process and "
                          "gives the same pixels as the gsrender command line on the same frame and settings.");
    g_prop->propSetString(p, kOfxPropVersionLabel, 0, "1.0");
    g_prop->propSetString(p, kOfxImageEffectPluginPropGrouping, 0, "Keyer");
    g_prop->propSetString(p, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
    g_prop->propSetString(p, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
    g_prop->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthFloat);
    g_prop->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
    g_prop->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthByte);
    g_prop->propSetInt(p, kOfxImageEffectPropSupportsTiles, 0, 1);
    g_prop->propSetInt(p, kOfxImageEffectPropSupportsMultiResolution, 0, 1);
    g_prop->propSetInt(p, kOfxImageEffectPropTemporalClipAccess, 0, 0);
    g_prop->propSetInt(p, kOfxImageEffectPluginPropSingleInstance, 0, 0);
    g_prop->propSetInt(p, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    /* Several render calls at once are fine: each has its own socket and shared memory,
     * and the worker computes a frame once for all of them. */
    g_prop->propSetString(p, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderFullySafe);
    g_prop->propSetInt(p, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
    return kOfxStatOK;
}

static OfxPropertySetHandle define_param(OfxParamSetHandle ps, const char *type, const char *name,
                                         const char *label, const char *hint)
{
    OfxPropertySetHandle p = NULL;
    if (g_param->paramDefine(ps, type, name, &p) != kOfxStatOK || !p)
        return NULL;
    g_prop->propSetString(p, kOfxPropLabel, 0, label);
    g_prop->propSetString(p, kOfxParamPropScriptName, 0, name);
    g_prop->propSetString(p, kOfxParamPropHint, 0, hint);
    return p;
}

static void define_choice(OfxParamSetHandle ps, const char *name, const char *label, const char *hint,
                          const Choice *options, int n, int def)
{
    OfxPropertySetHandle p = define_param(ps, kOfxParamTypeChoice, name, label, hint);
    if (!p)
        return;
    for (int i = 0; i < n; ++i)
        g_prop->propSetString(p, kOfxParamPropChoiceOption, i, options[i].label);
    g_prop->propSetInt(p, kOfxParamPropDefault, 0, def);
    g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);
}

static void define_rgb(OfxParamSetHandle ps, const char *name, const char *label, const char *hint, double r,
                       double g, double b)
{
    OfxPropertySetHandle p = define_param(ps, kOfxParamTypeRGB, name, label, hint);
    if (!p)
        return;
    g_prop->propSetDouble(p, kOfxParamPropDefault, 0, r);
    g_prop->propSetDouble(p, kOfxParamPropDefault, 1, g);
    g_prop->propSetDouble(p, kOfxParamPropDefault, 2, b);
}

/* GarbageMatte, CoreMatte (alpha, or R of an RGB image: the CLI's rule) and CleanPlate (RGB):
 * optional, so a host leaves them unconnected and the keyer estimates as without them. */
static OfxStatus define_extra_clips(OfxImageEffectHandle effect)
{
    for (int i = 0; i < GS_N_INPUTS; ++i) {
        OfxPropertySetHandle clip = NULL;
        if (g_effect->clipDefine(effect, kExtraClips[i], &clip) != kOfxStatOK)
            return kOfxStatFailed;
        int k = 0;
        if (i != GS_IN_CLEAN)
            g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, k++, kOfxImageComponentAlpha);
        g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, k++, kOfxImageComponentRGBA);
        g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, k++, kOfxImageComponentRGB);
        g_prop->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 0);
        g_prop->propSetInt(clip, kOfxImageEffectPropTemporalClipAccess, 0, 0);
        g_prop->propSetInt(clip, kOfxImageClipPropOptional, 0, 1);
        g_prop->propSetInt(clip, kOfxImageClipPropIsMask, 0, i != GS_IN_CLEAN);
    }
    return kOfxStatOK;
}

static OfxStatus action_describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs)
{
    OfxPropertySetHandle clip = NULL, p = NULL, fx = NULL;
    char *context = NULL;
    int general = inArgs && g_prop->propGetString(inArgs, kOfxImageEffectPropContext, 0, &context) == kOfxStatOK &&
                  context && strcmp(context, kOfxImageEffectContextGeneral) == 0;
    if (g_effect->clipDefine(effect, kOfxImageEffectSimpleSourceClipName, &clip) != kOfxStatOK)
        return kOfxStatFailed;
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGB);
    /* The keyer's guides (screen estimate) are per frame: never hand us a tile of the source. */
    g_prop->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 0);
    g_prop->propSetInt(clip, kOfxImageEffectPropTemporalClipAccess, 0, 0);
    g_prop->propSetInt(clip, kOfxImageClipPropOptional, 0, 0);

    if (general && define_extra_clips(effect) != kOfxStatOK)
        return kOfxStatFailed;

    if (g_effect->clipDefine(effect, kOfxImageEffectOutputClipName, &clip) != kOfxStatOK)
        return kOfxStatFailed;
    g_prop->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    g_prop->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 1);

    if (g_effect->getPropertySet(effect, &fx) == kOfxStatOK)
        g_prop->propSetString(fx, kOfxImageEffectPropClipPreferencesSlaveParam, 0, P_OUTPUT);

    OfxParamSetHandle ps = NULL;
    if (g_effect->getParamSet(effect, &ps) != kOfxStatOK)
        return kOfxStatFailed;

    define_choice(ps, P_KEYER, "Keyer",
                  "Neural network (default) or the classic colour-difference keyer (gsrender --keyer).", kKeyers,
                  NCHOICES(kKeyers), 0);

    p = define_param(ps, kOfxParamTypeString, P_MODEL, "Model",
                     "ONNX model file, or a .pt checkpoint with the PyTorch backend. Empty: the model bundled "
                     "with gsrender (gsrender --model).");
    if (p) {
        g_prop->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsFilePath);
        g_prop->propSetInt(p, kOfxParamPropStringFilePathExists, 0, 1);
        g_prop->propSetString(p, kOfxParamPropDefault, 0, "");
        g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);
    }

    define_choice(ps, P_BACKEND, "Backend",
                  "Inference backend of the worker: auto picks TensorRT, then ONNX Runtime CUDA, then CPU "
                  "(gsrender --backend).",
                  kBackends, NCHOICES(kBackends), 0);

    p = define_param(ps, kOfxParamTypeDouble, P_DESPILL, "Despill",
                     "Despill strength, 0 = off, 1 = full (gsrender --despill).");
    if (p) {
        g_prop->propSetDouble(p, kOfxParamPropDefault, 0, 1.0);
        g_prop->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
        g_prop->propSetDouble(p, kOfxParamPropMax, 0, 1.0);
        g_prop->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
        g_prop->propSetDouble(p, kOfxParamPropDisplayMax, 0, 1.0);
    }

    p = define_param(ps, kOfxParamTypeInteger, P_DESPOT, "Despot",
                     "Key out solid islands up to this many pixels across that clear screen surrounds, such as "
                     "tracking markers; 0 = off (gsrender --despot). In pixels of the full-resolution "
                     "frame: a proxy render scales it.");
    if (p) {
        g_prop->propSetInt(p, kOfxParamPropDefault, 0, GS_DESPOT_DEFAULT);
        g_prop->propSetInt(p, kOfxParamPropMin, 0, 0);
        g_prop->propSetInt(p, kOfxParamPropMax, 0, GS_DESPOT_MAX);
        g_prop->propSetInt(p, kOfxParamPropDisplayMin, 0, 0);
        g_prop->propSetInt(p, kOfxParamPropDisplayMax, 0, 256);
    }

    define_choice(ps, P_OUTPUT, "Output",
                  "Premultiplied RGBA (like the CLI's EXR), straight RGBA (like its PNG), the matte in RGBA, or "
                  "the foreground composited over a colour (alpha 1).",
                  kOutputs, NCHOICES(kOutputs), 0);
    define_rgb(ps, P_COMPOSITE, "Composite Colour",
               "Background for 'Composite over colour', in the input colour space.", 0.18, 0.18, 0.18);

    p = define_param(ps, kOfxParamTypeBoolean, P_SCREEN_OVERRIDE, "Override Screen Colour",
                     "Use the colour below instead of the per-frame estimate (gsrender --screen-colour).");
    if (p) {
        g_prop->propSetInt(p, kOfxParamPropDefault, 0, 0);
        g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);
    }
    define_rgb(ps, P_SCREEN, "Screen Colour",
               "Screen colour as linear Rec.709 R,G,B, the same numbers as gsrender --screen-colour.", 0.07, 0.42,
               0.09);

    define_choice(ps, P_COLOURSPACE, "Input Colour Space",
                  "Colour space of the pixels the host delivers. Auto: float images are scene-linear Rec.709 "
                  "(like EXR input to the CLI), 8/16-bit images are sRGB. The output is in the same space.",
                  kColourspaces, NCHOICES(kColourspaces), 0);
    p = define_param(ps, kOfxParamTypeString, P_COLOURSPACE_NAME, "Colour Space Name",
                     "Any colour space name of the OpenColorIO built-in config (gsrender --colorspace), used when "
                     "Input Colour Space is 'Other'.");
    if (p) {
        g_prop->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsSingleLine);
        g_prop->propSetString(p, kOfxParamPropDefault, 0, "");
        g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);
    }
    if (general) {
        p = define_param(ps, kOfxParamTypeBoolean, P_INVERT_GARBAGE, "Invert Garbage Matte",
                         "The GarbageMatte clip is 0 on the screen and 1 elsewhere (gsrender --invert-garbage).");
        if (p) {
            g_prop->propSetInt(p, kOfxParamPropDefault, 0, 0);
            g_prop->propSetInt(p, kOfxParamPropAnimates, 0, 0);
        }
    }
    return kOfxStatOK;
}

/* ------------------------------------------------------------------ instances */

static void set_enabled(OfxParamHandle p, int on)
{
    OfxPropertySetHandle props = NULL;
    if (p && g_param->paramGetPropertySet(p, &props) == kOfxStatOK)
        g_prop->propSetInt(props, kOfxParamPropEnabled, 0, on);
}

/* Grey out what the current settings ignore. */
static void update_enabled(Instance *in)
{
    int neural = get_choice(in->keyer, 0, NCHOICES(kKeyers)) == 0;
    set_enabled(in->model, neural);
    set_enabled(in->backend, neural);
    set_enabled(in->screen, get_bool(in->screen_override, 0));
    set_enabled(in->composite, get_choice(in->output, 0, NCHOICES(kOutputs)) == 3);
    set_enabled(in->colourspace_name,
                kColourspaces[get_choice(in->colourspace, 0, NCHOICES(kColourspaces))].value == NULL);
}

static void *alloc_mem(size_t n)
{
    void *p = NULL;
    if (g_memory && g_memory->memoryAlloc && g_memory->memoryAlloc(NULL, n, &p) == kOfxStatOK && p) {
        memset(p, 0, n);
        return p;
    }
    return calloc(1, n);
}

static void free_mem(void *p)
{
    if (g_memory && g_memory->memoryFree && p) {
        if (g_memory->memoryFree(p) == kOfxStatOK)
            return;
    }
    free(p);
}

static OfxStatus action_create_instance(OfxImageEffectHandle effect)
{
    OfxPropertySetHandle props = NULL;
    OfxParamSetHandle ps = NULL;
    if (g_effect->getPropertySet(effect, &props) != kOfxStatOK || g_effect->getParamSet(effect, &ps) != kOfxStatOK)
        return kOfxStatErrBadHandle;
    Instance *in = alloc_mem(sizeof(Instance));
    if (!in)
        return kOfxStatErrMemory;
    g_effect->clipGetHandle(effect, kOfxImageEffectSimpleSourceClipName, &in->src, NULL);
    g_effect->clipGetHandle(effect, kOfxImageEffectOutputClipName, &in->dst, NULL);
    for (int i = 0; i < GS_N_INPUTS; ++i)
        if (g_effect->clipGetHandle(effect, kExtraClips[i], &in->extra[i], NULL) != kOfxStatOK)
            in->extra[i] = NULL; /* Filter context: no such clip */
    struct {
        const char *name;
        OfxParamHandle *slot;
    } params[] = {
        {P_KEYER, &in->keyer},
        {P_MODEL, &in->model},
        {P_BACKEND, &in->backend},
        {P_DESPILL, &in->despill},
        {P_DESPOT, &in->despot},
        {P_OUTPUT, &in->output},
        {P_COMPOSITE, &in->composite},
        {P_SCREEN_OVERRIDE, &in->screen_override},
        {P_SCREEN, &in->screen},
        {P_COLOURSPACE, &in->colourspace},
        {P_COLOURSPACE_NAME, &in->colourspace_name},
        {P_INVERT_GARBAGE, &in->invert_garbage},
    };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); ++i)
        g_param->paramGetHandle(ps, params[i].name, params[i].slot, NULL);
    g_prop->propSetPointer(props, kOfxPropInstanceData, 0, in);
    update_enabled(in);
    return kOfxStatOK;
}

static OfxStatus action_destroy_instance(OfxImageEffectHandle effect)
{
    Instance *in = get_instance(effect);
    OfxPropertySetHandle props = NULL;
    if (g_effect->getPropertySet(effect, &props) == kOfxStatOK)
        g_prop->propSetPointer(props, kOfxPropInstanceData, 0, NULL);
    free_mem(in);
    return kOfxStatOK;
}

static OfxStatus action_instance_changed(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs)
{
    Instance *in = get_instance(effect);
    char *type = NULL;
    if (!in || !inArgs)
        return kOfxStatReplyDefault;
    note_change(in); /* a parameter or a clip (its connection, its input) */
    if (g_prop->propGetString(inArgs, kOfxPropType, 0, &type) == kOfxStatOK && type &&
        strcmp(type, kOfxTypeParameter) == 0)
        update_enabled(in);
    return kOfxStatOK;
}

/* Every render window needs the whole Source frame, and the optional clips over all of it: the
 * key depends on each of them everywhere, and the worker keys a frame once for all its windows
 * only when every window hands it the same inputs. The optional clips are asked for over the
 * Source frame (the frame they are placed on), whatever their own regions of definition. */
static OfxStatus action_regions_of_interest(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs,
                                            OfxPropertySetHandle outArgs)
{
    Instance *in = get_instance(effect);
    double time = 0.0;
    OfxRectD rod;
    if (!in || !in->src)
        return kOfxStatReplyDefault;
    g_prop->propGetDouble(inArgs, kOfxPropTime, 0, &time);
    if (g_effect->clipGetRegionOfDefinition(in->src, time, &rod) != kOfxStatOK)
        return kOfxStatReplyDefault;
    const double roi[4] = {rod.x1, rod.y1, rod.x2, rod.y2};
    g_prop->propSetDoubleN(outArgs, kOfxImageClipPropRoIPrefix kOfxImageEffectSimpleSourceClipName, 4, roi);
    for (int i = 0; i < GS_N_INPUTS; ++i) {
        char name[64];
        if (!in->extra[i])
            continue; /* Filter context */
        snprintf(name, sizeof(name), "%s%s", kOfxImageClipPropRoIPrefix, kExtraClips[i]);
        g_prop->propSetDoubleN(outArgs, name, 4, roi);
    }
    return kOfxStatOK;
}

static OfxStatus action_clip_preferences(OfxImageEffectHandle effect, OfxPropertySetHandle outArgs)
{
    Instance *in = get_instance(effect);
    if (!in)
        return kOfxStatReplyDefault;
    int mode = 0;
    if (in->output)
        g_param->paramGetValue(in->output, &mode);
    static const char *premult[] = {kOfxImagePreMultiplied, kOfxImageUnPreMultiplied, kOfxImagePreMultiplied,
                                    kOfxImageOpaque};
    if (mode < 0 || mode > 3)
        mode = 0;
    g_prop->propSetString(outArgs, kOfxImageClipPropComponentsPrefix kOfxImageEffectOutputClipName, 0,
                          kOfxImageComponentRGBA);
    g_prop->propSetString(outArgs, kOfxImageEffectPropPreMultiplication, 0, premult[mode]);
    return kOfxStatOK;
}

/* ------------------------------------------------------------------ pixels */

enum { DEPTH_BYTE = 1, DEPTH_SHORT = 2, DEPTH_HALF = 3, DEPTH_FLOAT = 4 };

typedef struct ImageView {
    OfxPropertySetHandle handle;
    char *data;
    OfxRectI bounds;
    int row_bytes;
    int depth;      /* DEPTH_* */
    int comps;      /* 1 (alpha), 3 or 4 */
    int pixel_bytes;
    const char *depth_name; /* as the protocol names it */
} ImageView;

static int parse_image(OfxPropertySetHandle img, ImageView *v, char *err, size_t errlen, const char *what)
{
    char *depth = NULL, *comps = NULL;
    void *data = NULL;
    memset(v, 0, sizeof(*v));
    v->handle = img;
    if (g_prop->propGetPointer(img, kOfxImagePropData, 0, &data) != kOfxStatOK || !data ||
        g_prop->propGetIntN(img, kOfxImagePropBounds, 4, &v->bounds.x1) != kOfxStatOK ||
        g_prop->propGetInt(img, kOfxImagePropRowBytes, 0, &v->row_bytes) != kOfxStatOK ||
        g_prop->propGetString(img, kOfxImageEffectPropPixelDepth, 0, &depth) != kOfxStatOK ||
        g_prop->propGetString(img, kOfxImageEffectPropComponents, 0, &comps) != kOfxStatOK || !depth || !comps) {
        snprintf(err, errlen, "the host's %s image lacks data, bounds, row bytes, depth or components", what);
        return -1;
    }
    v->data = data;
    int bytes;
    if (strcmp(depth, kOfxBitDepthFloat) == 0) {
        v->depth = DEPTH_FLOAT, bytes = 4, v->depth_name = "float";
    } else if (strcmp(depth, kOfxBitDepthHalf) == 0) {
        v->depth = DEPTH_HALF, bytes = 2, v->depth_name = "half";
    } else if (strcmp(depth, kOfxBitDepthShort) == 0) {
        v->depth = DEPTH_SHORT, bytes = 2, v->depth_name = "short";
    } else if (strcmp(depth, kOfxBitDepthByte) == 0) {
        v->depth = DEPTH_BYTE, bytes = 1, v->depth_name = "byte";
    } else {
        snprintf(err, errlen, "unsupported %s pixel depth '%s'", what, depth);
        return -1;
    }
    if (strcmp(comps, kOfxImageComponentRGBA) == 0)
        v->comps = 4;
    else if (strcmp(comps, kOfxImageComponentRGB) == 0)
        v->comps = 3;
    else if (strcmp(comps, kOfxImageComponentAlpha) == 0)
        v->comps = 1;
    else {
        snprintf(err, errlen, "unsupported %s components '%s'", what, comps);
        return -1;
    }
    v->pixel_bytes = bytes * v->comps;
    if (v->bounds.x2 < v->bounds.x1 || v->bounds.y2 < v->bounds.y1) {
        snprintf(err, errlen, "the host's %s image has empty bounds", what);
        return -1;
    }
    return 0;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint16_t float_to_half(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t exp = (int32_t)((bits >> 23) & 0xffu) - 127 + 15;
    uint32_t man = bits & 0x7fffffu;
    if (((bits >> 23) & 0xffu) == 0xffu) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0u));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        uint32_t rest = man & ((1u << shift) - 1u), mid = 1u << (shift - 1u);
        if (rest > mid || (rest == mid && (half & 1u)))
            ++half;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
        ++half; /* may carry into the exponent, which is the correct rounding */
    return (uint16_t)half;
}

static inline float load_comp(const char *px, int depth, int c)
{
    switch (depth) {
    case DEPTH_FLOAT: {
        float f;
        memcpy(&f, px + 4 * c, 4);
        return f;
    }
    case DEPTH_HALF: {
        uint16_t h;
        memcpy(&h, px + 2 * c, 2);
        return half_to_float(h);
    }
    case DEPTH_SHORT: {
        uint16_t s;
        memcpy(&s, px + 2 * c, 2);
        return (float)s / 65535.0f;
    }
    default:
        return (float)(unsigned char)px[c] / 255.0f;
    }
}

static inline void store_comp(char *px, int depth, int c, float v)
{
    switch (depth) {
    case DEPTH_FLOAT:
        memcpy(px + 4 * c, &v, 4);
        break;
    case DEPTH_HALF: {
        uint16_t h = float_to_half(v);
        memcpy(px + 2 * c, &h, 2);
        break;
    }
    case DEPTH_SHORT: {
        float x = v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v));
        uint16_t s = (uint16_t)(x * 65535.0f + 0.5f);
        memcpy(px + 2 * c, &s, 2);
        break;
    }
    default: {
        float x = v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v));
        px[c] = (char)(unsigned char)(x * 255.0f + 0.5f);
        break;
    }
    }
}

static inline char *pixel_at(const ImageView *v, int x, int y)
{
    return v->data + (ptrdiff_t)(y - v->bounds.y1) * v->row_bytes + (ptrdiff_t)(x - v->bounds.x1) * v->pixel_bytes;
}

/* Row jobs, split over the host's threads when it offers the multi-thread suite. */
typedef struct CopyJob {
    const ImageView *src, *dst;
    float *shm_in;        /* pack: W*H*3 top-down */
    const float *shm_out; /* unpack: window RGBA top-down */
    OfxRectI window;      /* unpack: render window (pixel coords) */
    OfxRectI valid;       /* unpack: window part covered by the keyed frame */
    int rows;
    int pack;
} CopyJob;

static void pack_rows(const CopyJob *job, int r0, int r1)
{
    const ImageView *s = job->src;
    int w = s->bounds.x2 - s->bounds.x1;
    for (int r = r0; r < r1; ++r) {
        int y = s->bounds.y2 - 1 - r; /* top-down */
        float *o = job->shm_in + (size_t)r * (size_t)w * 3u;
        for (int x = 0; x < w; ++x) {
            const char *px = pixel_at(s, s->bounds.x1 + x, y);
            o[3 * x + 0] = load_comp(px, s->depth, 0);
            o[3 * x + 1] = load_comp(px, s->depth, 1);
            o[3 * x + 2] = load_comp(px, s->depth, 2);
        }
    }
}

static void unpack_rows(const CopyJob *job, int r0, int r1)
{
    const ImageView *d = job->dst;
    const OfxRectI *win = &job->window, *val = &job->valid;
    int vw = val->x2 - val->x1;
    for (int r = r0; r < r1; ++r) {
        int y = win->y1 + r;
        int inside_y = y >= val->y1 && y < val->y2;
        for (int x = win->x1; x < win->x2; ++x) {
            float rgba[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (inside_y && x >= val->x1 && x < val->x2) {
                /* worker rows are top-down from the window's top edge */
                const float *p = job->shm_out + ((size_t)(val->y2 - 1 - y) * (size_t)vw + (size_t)(x - val->x1)) * 4u;
                memcpy(rgba, p, sizeof(rgba));
            }
            char *px = pixel_at(d, x, y);
            if (d->comps == 4) {
                for (int c = 0; c < 4; ++c)
                    store_comp(px, d->depth, c, rgba[c]);
            } else if (d->comps == 3) {
                for (int c = 0; c < 3; ++c)
                    store_comp(px, d->depth, c, rgba[c]);
            } else {
                store_comp(px, d->depth, 0, rgba[3]);
            }
        }
    }
}

static void copy_slice(unsigned int index, unsigned int count, void *arg)
{
    const CopyJob *job = arg;
    int r0 = (int)((long long)job->rows * index / count);
    int r1 = (int)((long long)job->rows * (index + 1) / count);
    if (job->pack)
        pack_rows(job, r0, r1);
    else
        unpack_rows(job, r0, r1);
}

static void run_copy(CopyJob *job)
{
    unsigned int n = 1;
    if (g_thread && g_thread->multiThread && g_thread->multiThreadNumCPUs && job->rows >= 256)
        if (g_thread->multiThreadNumCPUs(&n) != kOfxStatOK || n < 1)
            n = 1;
    if (n > 8)
        n = 8;
    if (n > 1 && g_thread->multiThread(copy_slice, n, job) == kOfxStatOK)
        return;
    copy_slice(0, 1, job);
}

/* An optional clip's pixels over the Source frame (top-down, `channels` floats per pixel), zero
 * outside its bounds. Mattes take alpha (or R of an RGB image), as the CLI reads a matte file. */
static void pack_extra(const ImageView *v, const OfxRectI *frame, int channels, float *out)
{
    int w = frame->x2 - frame->x1, h = frame->y2 - frame->y1;
    int first = channels == 3 ? 0 : (v->comps == 3 ? 0 : v->comps - 1);
    for (int r = 0; r < h; ++r) {
        int y = frame->y2 - 1 - r;
        float *o = out + (size_t)r * (size_t)w * (size_t)channels;
        for (int x = 0; x < w; ++x) {
            int fx = frame->x1 + x;
            int inside = y >= v->bounds.y1 && y < v->bounds.y2 && fx >= v->bounds.x1 && fx < v->bounds.x2;
            const char *px = inside ? pixel_at(v, fx, y) : NULL;
            for (int c = 0; c < channels; ++c)
                o[(size_t)x * (size_t)channels + (size_t)c] = px ? load_comp(px, v->depth, first + c) : 0.0f;
        }
    }
}

/* ------------------------------------------------------------------ regions */

/* A region a host can hand over whole: not empty, not infinite (a generator's). */
static int finite_region(const OfxRectD *r)
{
    return r->x2 > r->x1 && r->y2 > r->y1 && r->x2 - r->x1 < 1e7 && r->y2 - r->y1 < 1e7;
}

/* Canonical -> pixel coordinates; a thousandth of a pixel of slack for rounding. */
static OfxRectI to_pixels(const OfxRectD *r, const double scale[2], OfxPropertySetHandle img)
{
    double par = 1.0;
    g_prop->propGetDouble(img, kOfxImagePropPixelAspectRatio, 0, &par);
    if (!(par > 0.0))
        par = 1.0;
    OfxRectI p = {(int)floor(r->x1 * scale[0] / par + 1e-3), (int)floor(r->y1 * scale[1] + 1e-3),
                  (int)ceil(r->x2 * scale[0] / par - 1e-3), (int)ceil(r->y2 * scale[1] - 1e-3)};
    return p;
}

/* Adds "WHAT (pixels got of want)" to the list of inputs handed over in part, when `got` does
 * not cover `want`; the list becomes one warning for the whole render. */
static void note_if_short(char *list, size_t len, const char *what, const OfxRectI *got, const OfxRectI *want)
{
    if (want->x2 <= want->x1 || want->y2 <= want->y1)
        return; /* nothing to hand over */
    if (got->x1 <= want->x1 && got->y1 <= want->y1 && got->x2 >= want->x2 && got->y2 >= want->y2)
        return;
    size_t used = strlen(list);
    if (used + 1 >= len)
        return;
    snprintf(list + used, len - used, "%s%s (pixels %d,%d-%d,%d of %d,%d-%d,%d)", used ? " and of " : "", what,
             got->x1, got->y1, got->x2, got->y2, want->x1, want->y1, want->x2, want->y2);
}

/* ------------------------------------------------------------------ render */

static int abort_requested(void *effect)
{
    return g_effect->abort ? g_effect->abort((OfxImageEffectHandle)effect) : 0;
}

static void fill_zero(const ImageView *d, const OfxRectI *win)
{
    for (int y = win->y1; y < win->y2; ++y)
        if (win->x2 > win->x1)
            memset(pixel_at(d, win->x1, y), 0, (size_t)(win->x2 - win->x1) * (size_t)d->pixel_bytes);
}

static OfxStatus action_render(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs)
{
    Instance *in = get_instance(effect);
    if (!in)
        return kOfxStatErrBadHandle;
    double time = 0.0;
    OfxRectI win;
    char err[GS_ERR_LEN] = "";
    g_prop->propGetDouble(inArgs, kOfxPropTime, 0, &time);
    if (g_prop->propGetIntN(inArgs, kOfxImageEffectPropRenderWindow, 4, &win.x1) != kOfxStatOK) {
        render_failed(effect, in, time, "the host gave no render window");
        return kOfxStatFailed;
    }

    OfxPropertySetHandle dst_img = NULL, src_img = NULL, extra_img[GS_N_INPUTS] = {NULL, NULL, NULL};
    ImageView dst, src, extra[GS_N_INPUTS];
    OfxStatus status = kOfxStatFailed;
    GsShm shm;
    memset(&shm, 0, sizeof(shm));

    if (g_effect->clipGetImage(in->dst, time, NULL, &dst_img) != kOfxStatOK || !dst_img) {
        render_failed(effect, in, time, "the host gave no output image");
        return kOfxStatFailed;
    }
    if (parse_image(dst_img, &dst, err, sizeof(err), "output") != 0)
        goto fail;
    /* never write outside what the host allocated */
    if (win.x1 < dst.bounds.x1) win.x1 = dst.bounds.x1;
    if (win.y1 < dst.bounds.y1) win.y1 = dst.bounds.y1;
    if (win.x2 > dst.bounds.x2) win.x2 = dst.bounds.x2;
    if (win.y2 > dst.bounds.y2) win.y2 = dst.bounds.y2;
    if (win.x2 <= win.x1 || win.y2 <= win.y1) {
        status = kOfxStatOK;
        goto done;
    }

    /* The keyer's per-frame guides (screen colour, clean-screen estimate) come from the whole
     * frame, so name the Source clip's whole region of definition: with no region named, some
     * hosts hand over only what the render window needs, and the key would change silently. */
    OfxRectD rod;
    int have_rod = g_effect->clipGetRegionOfDefinition(in->src, time, &rod) == kOfxStatOK && finite_region(&rod);
    double scale[2] = {1.0, 1.0};
    g_prop->propGetDoubleN(inArgs, kOfxImageEffectPropRenderScale, 2, scale);
    if (g_effect->clipGetImage(in->src, time, have_rod ? &rod : NULL, &src_img) != kOfxStatOK || !src_img) {
        snprintf(err, sizeof(err), "no source image at frame %g (is Source connected?)", time);
        goto fail;
    }
    if (parse_image(src_img, &src, err, sizeof(err), "source") != 0)
        goto fail;
    char short_inputs[GS_ERR_LEN] = ""; /* inputs the host handed over in part, for one warning */
    if (have_rod) {
        OfxRectI want = to_pixels(&rod, scale, src_img);
        note_if_short(short_inputs, sizeof(short_inputs), "the Source frame", &src.bounds, &want);
    }
    if (src.comps < 3) {
        snprintf(err, sizeof(err), "the source must be RGB or RGBA, not alpha only");
        goto fail;
    }
    int fw = src.bounds.x2 - src.bounds.x1, fh = src.bounds.y2 - src.bounds.y1;
    OfxRectI valid = {win.x1 > src.bounds.x1 ? win.x1 : src.bounds.x1, win.y1 > src.bounds.y1 ? win.y1 : src.bounds.y1,
                      win.x2 < src.bounds.x2 ? win.x2 : src.bounds.x2, win.y2 < src.bounds.y2 ? win.y2 : src.bounds.y2};
    if (fw <= 0 || fh <= 0 || valid.x2 <= valid.x1 || valid.y2 <= valid.y1) {
        fill_zero(&dst, &win); /* nothing of the source under this window */
        status = kOfxStatOK;
        goto done;
    }
    if ((size_t)fw * (size_t)fh > MAX_FRAME_PIXELS) {
        snprintf(err, sizeof(err), "the source frame %dx%d is too large", fw, fh);
        goto fail;
    }

    /* settings at this time */
    char model[4096], csname[512];
    GsSettings s;
    memset(&s, 0, sizeof(s));
    get_string(in->model, time, model, sizeof(model));
    s.model = model;
    s.keyer = kKeyers[get_choice(in->keyer, time, NCHOICES(kKeyers))].value;
    s.backend = kBackends[get_choice(in->backend, time, NCHOICES(kBackends))].value;
    s.despill = get_double(in->despill, time, 1.0);
    /* Despot is in pixels of the full-resolution frame: at a proxy render scale the markers
     * are smaller by that scale, and so is the largest island keyed out. */
    double despot_scale = scale[0] < scale[1] ? scale[0] : scale[1];
    if (!(despot_scale > 0.0) || despot_scale > 1.0)
        despot_scale = 1.0;
    s.despot = (int)floor(get_int(in->despot, time, GS_DESPOT_DEFAULT) * despot_scale + 0.5);
    s.output = kOutputs[get_choice(in->output, time, NCHOICES(kOutputs))].value;
    get_rgb(in->composite, time, s.composite);
    s.screen_override = get_bool(in->screen_override, time);
    get_rgb(in->screen, time, s.screen);
    const char *cs = kColourspaces[get_choice(in->colourspace, time, NCHOICES(kColourspaces))].value;
    if (!cs) {
        get_string(in->colourspace_name, time, csname, sizeof(csname));
        if (!csname[0]) {
            snprintf(err, sizeof(err), "Input Colour Space is 'Other' but Colour Space Name is empty");
            goto fail;
        }
        cs = csname;
    }
    s.colorspace = cs;
    s.source_depth = src.depth_name;
    s.invert_garbage = get_bool(in->invert_garbage, time);

    /* optional clips (General context), fetched whole over the same region as the Source; the
     * part of that region outside a clip's own region of definition is 0 and need not come */
    size_t in_bytes = ((size_t)fw * (size_t)fh * 3u * sizeof(float) + 63u) / 64u * 64u;
    long long extra_offset[GS_N_INPUTS] = {-1, -1, -1};
    for (int i = 0; i < GS_N_INPUTS; ++i) {
        OfxPropertySetHandle cprops = NULL;
        int connected = 0;
        if (!in->extra[i] || g_effect->clipGetPropertySet(in->extra[i], &cprops) != kOfxStatOK ||
            g_prop->propGetInt(cprops, kOfxImageClipPropConnected, 0, &connected) != kOfxStatOK || !connected)
            continue; /* unconnected: not used */
        if (g_effect->clipGetImage(in->extra[i], time, have_rod ? &rod : NULL, &extra_img[i]) != kOfxStatOK ||
            !extra_img[i]) {
            snprintf(err, sizeof(err), "%s is connected but gave no image at frame %g", kExtraClips[i], time);
            goto fail;
        }
        if (parse_image(extra_img[i], &extra[i], err, sizeof(err), kExtraClips[i]) != 0)
            goto fail;
        if (i == GS_IN_CLEAN && extra[i].comps < 3) {
            snprintf(err, sizeof(err), "CleanPlate must be RGB or RGBA, not alpha only");
            goto fail;
        }
        OfxRectD erod;
        if (have_rod) {
            OfxRectI want = to_pixels(&rod, scale, extra_img[i]);
            if (g_effect->clipGetRegionOfDefinition(in->extra[i], time, &erod) == kOfxStatOK && finite_region(&erod)) {
                OfxRectI own = to_pixels(&erod, scale, extra_img[i]);
                want.x1 = own.x1 > want.x1 ? own.x1 : want.x1;
                want.y1 = own.y1 > want.y1 ? own.y1 : want.y1;
                want.x2 = own.x2 < want.x2 ? own.x2 : want.x2;
                want.y2 = own.y2 < want.y2 ? own.y2 : want.y2;
            }
            note_if_short(short_inputs, sizeof(short_inputs), kExtraClips[i], &extra[i].bounds, &want);
        }
        extra_offset[i] = (long long)in_bytes;
        in_bytes += ((size_t)fw * (size_t)fh * (i == GS_IN_CLEAN ? 3u : 1u) * sizeof(float) + 63u) / 64u * 64u;
    }

    /* frame in (RGB float, top-down), optional inputs after it, window out (RGBA float, top-down) */
    size_t vw = (size_t)(valid.x2 - valid.x1), vh = (size_t)(valid.y2 - valid.y1);
    if (gs_shm_create(&shm, in_bytes, vw * vh * 4u * sizeof(float), err, sizeof(err)) != 0)
        goto fail;
    CopyJob pack = {&src, &dst, (float *)((char *)shm.base + shm.in_offset), NULL, win, valid, fh, 1};
    run_copy(&pack);
    for (int i = 0; i < GS_N_INPUTS; ++i) {
        if (extra_offset[i] < 0)
            continue;
        pack_extra(&extra[i], &src.bounds, i == GS_IN_CLEAN ? 3 : 1, (float *)((char *)shm.base + extra_offset[i]));
        g_effect->clipReleaseImage(extra_img[i]);
        extra_img[i] = NULL;
    }
    g_effect->clipReleaseImage(src_img); /* the frame is in shared memory now */
    src_img = NULL;

    GsRenderRequest req = {fw, fh, valid.x1 - src.bounds.x1, src.bounds.y2 - valid.y2, valid.x2 - src.bounds.x1,
                           src.bounds.y2 - valid.y1, &s, {-1, -1, -1}};
    memcpy(req.extra_offset, extra_offset, sizeof(extra_offset));
    int rc = gs_render(&shm, &req, abort_requested, effect, err, sizeof(err));
    if (rc == GS_ABORTED) {
        status = kOfxStatOK; /* the host no longer wants this frame */
        goto done;
    }
    if (rc != GS_OK)
        goto fail;
    /* the worker answered rows [valid.y2-1 .. valid.y1] top-down; src bounds no longer needed */
    CopyJob unpack = {NULL, &dst, NULL, (const float *)((const char *)shm.base + shm.out_offset), win, valid,
                      win.y2 - win.y1, 0};
    run_copy(&unpack);
    char warning[GS_ERR_LEN + 256] = "";
    if (short_inputs[0])
        snprintf(warning, sizeof(warning),
                 "the host gave only part of %s: the key is computed from what it gave (a missing part of an "
                 "optional clip counts as 0), so it can differ from a full-frame render",
                 short_inputs);
    render_succeeded(effect, in, time, warning);
    status = kOfxStatOK;
    goto done;

fail:
    if (dst_img && dst.data)
        fill_zero(&dst, &win);
    render_failed(effect, in, time, err[0] ? err : "render failed");
    status = kOfxStatFailed;
done:
    gs_shm_destroy(&shm);
    for (int i = 0; i < GS_N_INPUTS; ++i)
        if (extra_img[i])
            g_effect->clipReleaseImage(extra_img[i]);
    if (src_img)
        g_effect->clipReleaseImage(src_img);
    if (dst_img)
        g_effect->clipReleaseImage(dst_img);
    return status;
}

/* ------------------------------------------------------------------ entry points */

static OfxStatus action_load(void)
{
    if (!g_host || !g_host->fetchSuite)
        return kOfxStatErrMissingHostFeature;
    g_prop = g_host->fetchSuite(g_host->host, kOfxPropertySuite, 1);
    g_effect = g_host->fetchSuite(g_host->host, kOfxImageEffectSuite, 1);
    g_param = g_host->fetchSuite(g_host->host, kOfxParameterSuite, 1);
    g_memory = g_host->fetchSuite(g_host->host, kOfxMemorySuite, 1);
    g_thread = g_host->fetchSuite(g_host->host, kOfxMultiThreadSuite, 1);
    g_msg2 = g_host->fetchSuite(g_host->host, kOfxMessageSuite, 2);
    g_msg = g_msg2 ? (const OfxMessageSuiteV1 *)g_msg2 : g_host->fetchSuite(g_host->host, kOfxMessageSuite, 1);
    if (!g_prop || !g_effect || !g_param)
        return kOfxStatErrMissingHostFeature;
    return kOfxStatOK;
}

static OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle inArgs,
                            OfxPropertySetHandle outArgs)
{
    OfxImageEffectHandle effect = (OfxImageEffectHandle)handle;
    if (!action)
        return kOfxStatErrBadHandle;
    if (strcmp(action, kOfxActionLoad) == 0)
        return action_load();
    if (!g_prop || !g_effect || !g_param)
        return kOfxStatErrMissingHostFeature;
    if (strcmp(action, kOfxActionUnload) == 0)
        return kOfxStatOK; /* the worker outlives the plugin: it exits when idle */
    if (strcmp(action, kOfxActionDescribe) == 0)
        return action_describe(effect);
    if (strcmp(action, kOfxImageEffectActionDescribeInContext) == 0)
        return action_describe_in_context(effect, inArgs);
    if (strcmp(action, kOfxActionCreateInstance) == 0)
        return action_create_instance(effect);
    if (strcmp(action, kOfxActionDestroyInstance) == 0)
        return action_destroy_instance(effect);
    if (strcmp(action, kOfxActionInstanceChanged) == 0)
        return action_instance_changed(effect, inArgs);
    if (strcmp(action, kOfxImageEffectActionGetRegionsOfInterest) == 0)
        return action_regions_of_interest(effect, inArgs, outArgs);
    if (strcmp(action, kOfxImageEffectActionGetClipPreferences) == 0)
        return action_clip_preferences(effect, outArgs);
    if (strcmp(action, kOfxImageEffectActionRender) == 0)
        return action_render(effect, inArgs);
    if (strcmp(action, kOfxImageEffectActionBeginSequenceRender) == 0) {
        Instance *in = get_instance(effect);
        if (in)
            note_change(in); /* a new render pass: its clean renders clear an older failure */
        return kOfxStatReplyDefault;
    }
    return kOfxStatReplyDefault;
}

static void set_host(OfxHost *host)
{
    g_host = host;
}

static OfxPlugin g_plugin = {
    kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, PLUGIN_ID, PLUGIN_VERSION_MAJOR,
    PLUGIN_VERSION_MINOR,     set_host,                        main_entry,
};

GS_OFX_EXPORT int OfxGetNumberOfPlugins(void)
{
    return 1;
}

GS_OFX_EXPORT OfxPlugin *OfxGetPlugin(int nth)
{
    return nth == 0 ? &g_plugin : NULL;
}
