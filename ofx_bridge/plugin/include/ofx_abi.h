/*
 * ofx_abi.h - the subset of the OpenFX 1.4 C ABI that the GsKey plugin uses.
 *
 * Written for gsrender from the OpenFX 1.4 specification (no OpenFX headers are
 * shipped with the project). Only what the plugin and its test host need is
 * declared: the plugin/host structs, the property, image-effect, parameter,
 * memory, multi-thread and message suites, and the action, property and value
 * strings. Struct member order and types follow the specification exactly,
 * because hosts hand the plugin pointers to structs laid out that way.
 */
#ifndef GSRENDER_OFX_ABI_H
#define GSRENDER_OFX_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define GS_OFX_EXPORT __declspec(dllexport)
#else
#define GS_OFX_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------ core types */

typedef int OfxStatus;
typedef double OfxTime;

typedef struct OfxPropertySetStruct *OfxPropertySetHandle;
typedef struct OfxImageEffectStruct *OfxImageEffectHandle;
typedef struct OfxImageClipStruct *OfxImageClipHandle;
typedef struct OfxImageMemoryStruct *OfxImageMemoryHandle;
typedef struct OfxParamStruct *OfxParamHandle;
typedef struct OfxParamSetStruct *OfxParamSetHandle;
typedef struct OfxMutex *OfxMutexHandle;

typedef struct OfxRectI { int x1, y1, x2, y2; } OfxRectI;
typedef struct OfxRectD { double x1, y1, x2, y2; } OfxRectD;
typedef struct OfxPointI { int x, y; } OfxPointI;
typedef struct OfxPointD { double x, y; } OfxPointD;
typedef struct OfxRangeI { int min, max; } OfxRangeI;
typedef struct OfxRangeD { double min, max; } OfxRangeD;

/* What the host gives the plugin in setHost: its descriptor and the suite fetcher. */
typedef struct OfxHost {
    OfxPropertySetHandle host;
    const void *(*fetchSuite)(OfxPropertySetHandle host, const char *suiteName, int suiteVersion);
} OfxHost;

/* Every action goes through this one entry point. */
typedef OfxStatus(OfxPluginEntryPoint)(const char *action, const void *handle,
                                       OfxPropertySetHandle inArgs, OfxPropertySetHandle outArgs);

typedef struct OfxPlugin {
    const char *pluginApi;
    int apiVersion;
    const char *pluginIdentifier;
    unsigned int pluginVersionMajor;
    unsigned int pluginVersionMinor;
    void (*setHost)(OfxHost *host);
    OfxPluginEntryPoint *mainEntry;
} OfxPlugin;

/* The two symbols every OFX binary exports (the host finds them with dlsym). */
typedef int (*OfxGetNumberOfPluginsFn)(void);
typedef OfxPlugin *(*OfxGetPluginFn)(int nth);

/* ------------------------------------------------------------------ status codes */

#define kOfxStatOK 0
#define kOfxStatFailed ((int)1)
#define kOfxStatErrFatal ((int)2)
#define kOfxStatErrUnknown ((int)3)
#define kOfxStatErrMissingHostFeature ((int)4)
#define kOfxStatErrUnsupported ((int)5)
#define kOfxStatErrExists ((int)6)
#define kOfxStatErrFormat ((int)7)
#define kOfxStatErrMemory ((int)8)
#define kOfxStatErrBadHandle ((int)9)
#define kOfxStatErrBadIndex ((int)10)
#define kOfxStatErrValue ((int)11)
#define kOfxStatReplyYes ((int)12)
#define kOfxStatReplyNo ((int)13)
#define kOfxStatReplyDefault ((int)14)
#define kOfxStatErrImageFormat ((int)1000)

/* ------------------------------------------------------------------ suite names */

#define kOfxPropertySuite "OfxPropertySuite"
#define kOfxImageEffectSuite "OfxImageEffectSuite"
#define kOfxParameterSuite "OfxParameterSuite"
#define kOfxMemorySuite "OfxMemorySuite"
#define kOfxMultiThreadSuite "OfxMultiThreadSuite"
#define kOfxMessageSuite "OfxMessageSuite"

/* ------------------------------------------------------------------ property suite (v1) */

typedef struct OfxPropertySuiteV1 {
    OfxStatus (*propSetPointer)(OfxPropertySetHandle props, const char *name, int index, void *value);
    OfxStatus (*propSetString)(OfxPropertySetHandle props, const char *name, int index, const char *value);
    OfxStatus (*propSetDouble)(OfxPropertySetHandle props, const char *name, int index, double value);
    OfxStatus (*propSetInt)(OfxPropertySetHandle props, const char *name, int index, int value);
    OfxStatus (*propSetPointerN)(OfxPropertySetHandle props, const char *name, int count, void *const *value);
    OfxStatus (*propSetStringN)(OfxPropertySetHandle props, const char *name, int count,
                                const char *const *value);
    OfxStatus (*propSetDoubleN)(OfxPropertySetHandle props, const char *name, int count, const double *value);
    OfxStatus (*propSetIntN)(OfxPropertySetHandle props, const char *name, int count, const int *value);
    OfxStatus (*propGetPointer)(OfxPropertySetHandle props, const char *name, int index, void **value);
    OfxStatus (*propGetString)(OfxPropertySetHandle props, const char *name, int index, char **value);
    OfxStatus (*propGetDouble)(OfxPropertySetHandle props, const char *name, int index, double *value);
    OfxStatus (*propGetInt)(OfxPropertySetHandle props, const char *name, int index, int *value);
    OfxStatus (*propGetPointerN)(OfxPropertySetHandle props, const char *name, int count, void **value);
    OfxStatus (*propGetStringN)(OfxPropertySetHandle props, const char *name, int count, char **value);
    OfxStatus (*propGetDoubleN)(OfxPropertySetHandle props, const char *name, int count, double *value);
    OfxStatus (*propGetIntN)(OfxPropertySetHandle props, const char *name, int count, int *value);
    OfxStatus (*propReset)(OfxPropertySetHandle props, const char *name);
    OfxStatus (*propGetDimension)(OfxPropertySetHandle props, const char *name, int *count);
} OfxPropertySuiteV1;

/* ------------------------------------------------------------------ image effect suite (v1) */

typedef struct OfxImageEffectSuiteV1 {
    OfxStatus (*getPropertySet)(OfxImageEffectHandle effect, OfxPropertySetHandle *props);
    OfxStatus (*getParamSet)(OfxImageEffectHandle effect, OfxParamSetHandle *paramSet);
    OfxStatus (*clipDefine)(OfxImageEffectHandle effect, const char *name, OfxPropertySetHandle *props);
    OfxStatus (*clipGetHandle)(OfxImageEffectHandle effect, const char *name, OfxImageClipHandle *clip,
                               OfxPropertySetHandle *props);
    OfxStatus (*clipGetPropertySet)(OfxImageClipHandle clip, OfxPropertySetHandle *props);
    OfxStatus (*clipGetImage)(OfxImageClipHandle clip, OfxTime time, const OfxRectD *region,
                              OfxPropertySetHandle *image);
    OfxStatus (*clipReleaseImage)(OfxPropertySetHandle image);
    OfxStatus (*clipGetRegionOfDefinition)(OfxImageClipHandle clip, OfxTime time, OfxRectD *bounds);
    int (*abort)(OfxImageEffectHandle effect);
    OfxStatus (*imageMemoryAlloc)(OfxImageEffectHandle effect, size_t nBytes, OfxImageMemoryHandle *memory);
    OfxStatus (*imageMemoryFree)(OfxImageMemoryHandle memory);
    OfxStatus (*imageMemoryLock)(OfxImageMemoryHandle memory, void **pointer);
    OfxStatus (*imageMemoryUnlock)(OfxImageMemoryHandle memory);
} OfxImageEffectSuiteV1;

/* ------------------------------------------------------------------ parameter suite (v1) */

/* The value accessors are variadic: int* for Integer/Boolean/Choice, double* for Double,
 * three/four double* for RGB/RGBA, char** for String. */
typedef struct OfxParameterSuiteV1 {
    OfxStatus (*paramDefine)(OfxParamSetHandle paramSet, const char *paramType, const char *name,
                             OfxPropertySetHandle *props);
    OfxStatus (*paramGetHandle)(OfxParamSetHandle paramSet, const char *name, OfxParamHandle *param,
                                OfxPropertySetHandle *props);
    OfxStatus (*paramSetGetPropertySet)(OfxParamSetHandle paramSet, OfxPropertySetHandle *props);
    OfxStatus (*paramGetPropertySet)(OfxParamHandle param, OfxPropertySetHandle *props);
    OfxStatus (*paramGetValue)(OfxParamHandle param, ...);
    OfxStatus (*paramGetValueAtTime)(OfxParamHandle param, OfxTime time, ...);
    OfxStatus (*paramGetDerivative)(OfxParamHandle param, OfxTime time, ...);
    OfxStatus (*paramGetIntegral)(OfxParamHandle param, OfxTime time1, OfxTime time2, ...);
    OfxStatus (*paramSetValue)(OfxParamHandle param, ...);
    OfxStatus (*paramSetValueAtTime)(OfxParamHandle param, OfxTime time, ...);
    OfxStatus (*paramGetNumKeys)(OfxParamHandle param, unsigned int *numberOfKeys);
    OfxStatus (*paramGetKeyTime)(OfxParamHandle param, unsigned int nthKey, OfxTime *time);
    OfxStatus (*paramGetKeyIndex)(OfxParamHandle param, OfxTime time, int direction, int *index);
    OfxStatus (*paramDeleteKey)(OfxParamHandle param, OfxTime time);
    OfxStatus (*paramDeleteAllKeys)(OfxParamHandle param);
    OfxStatus (*paramCopy)(OfxParamHandle paramTo, OfxParamHandle paramFrom, OfxTime dstOffset,
                           const OfxRangeD *frameRange);
    OfxStatus (*paramEditBegin)(OfxParamSetHandle paramSet, const char *name);
    OfxStatus (*paramEditEnd)(OfxParamSetHandle paramSet);
} OfxParameterSuiteV1;

/* ------------------------------------------------------------------ memory suite (v1) */

typedef struct OfxMemorySuiteV1 {
    OfxStatus (*memoryAlloc)(void *handle, size_t nBytes, void **allocatedData);
    OfxStatus (*memoryFree)(void *allocatedData);
} OfxMemorySuiteV1;

/* ------------------------------------------------------------------ multi-thread suite (v1) */

typedef void(OfxThreadFunctionV1)(unsigned int threadIndex, unsigned int threadMax, void *customArg);

typedef struct OfxMultiThreadSuiteV1 {
    OfxStatus (*multiThread)(OfxThreadFunctionV1 func, unsigned int nThreads, void *customArg);
    OfxStatus (*multiThreadNumCPUs)(unsigned int *nCPUs);
    OfxStatus (*multiThreadIndex)(unsigned int *threadIndex);
    int (*multiThreadIsSpawnedThread)(void);
    OfxStatus (*mutexCreate)(OfxMutexHandle *mutex, int lockCount);
    OfxStatus (*mutexDestroy)(const OfxMutexHandle mutex);
    OfxStatus (*mutexLock)(const OfxMutexHandle mutex);
    OfxStatus (*mutexUnLock)(const OfxMutexHandle mutex);
    OfxStatus (*mutexTryLock)(const OfxMutexHandle mutex);
} OfxMultiThreadSuiteV1;

/* ------------------------------------------------------------------ message suite (v1, v2) */

typedef struct OfxMessageSuiteV1 {
    OfxStatus (*message)(void *handle, const char *messageType, const char *messageId, const char *format,
                         ...);
} OfxMessageSuiteV1;

typedef struct OfxMessageSuiteV2 {
    OfxStatus (*message)(void *handle, const char *messageType, const char *messageId, const char *format,
                         ...);
    OfxStatus (*setPersistentMessage)(void *handle, const char *messageType, const char *messageId,
                                      const char *format, ...);
    OfxStatus (*clearPersistentMessage)(void *handle);
} OfxMessageSuiteV2;

#define kOfxMessageFatal "OfxMessageFatal"
#define kOfxMessageError "OfxMessageError"
#define kOfxMessageWarning "OfxMessageWarning"
#define kOfxMessageMessage "OfxMessageMessage"
#define kOfxMessageLog "OfxMessageLog"
#define kOfxMessageQuestion "OfxMessageQuestion"

/* ------------------------------------------------------------------ generic actions */

#define kOfxActionLoad "OfxActionLoad"
#define kOfxActionDescribe "OfxActionDescribe"
#define kOfxActionUnload "OfxActionUnload"
#define kOfxActionPurgeCaches "OfxActionPurgeCaches"
#define kOfxActionSyncPrivateData "OfxActionSyncPrivateData"
#define kOfxActionCreateInstance "OfxActionCreateInstance"
#define kOfxActionDestroyInstance "OfxActionDestroyInstance"
#define kOfxActionInstanceChanged "OfxActionInstanceChanged"
#define kOfxActionBeginInstanceChanged "OfxActionBeginInstanceChanged"
#define kOfxActionEndInstanceChanged "OfxActionEndInstanceChanged"
#define kOfxActionBeginInstanceEdit "OfxActionBeginInstanceEdit"
#define kOfxActionEndInstanceEdit "OfxActionEndInstanceEdit"

/* ------------------------------------------------------------------ image effect actions */

#define kOfxImageEffectPluginApi "OfxImageEffectPluginAPI"
#define kOfxImageEffectPluginApiVersion 1

#define kOfxImageEffectActionGetRegionOfDefinition "OfxImageEffectActionGetRegionOfDefinition"
#define kOfxImageEffectActionGetRegionsOfInterest "OfxImageEffectActionGetRegionsOfInterest"
#define kOfxImageEffectActionGetTimeDomain "OfxImageEffectActionGetTimeDomain"
#define kOfxImageEffectActionGetFramesNeeded "OfxImageEffectActionGetFramesNeeded"
#define kOfxImageEffectActionGetClipPreferences "OfxImageEffectActionGetClipPreferences"
#define kOfxImageEffectActionIsIdentity "OfxImageEffectActionIsIdentity"
#define kOfxImageEffectActionRender "OfxImageEffectActionRender"
#define kOfxImageEffectActionBeginSequenceRender "OfxImageEffectActionBeginSequenceRender"
#define kOfxImageEffectActionEndSequenceRender "OfxImageEffectActionEndSequenceRender"
#define kOfxImageEffectActionDescribeInContext "OfxImageEffectActionDescribeInContext"

/* ------------------------------------------------------------------ generic properties */

#define kOfxPropAPIVersion "OfxPropAPIVersion"
#define kOfxPropType "OfxPropType"
#define kOfxPropName "OfxPropName"
#define kOfxPropLabel "OfxPropLabel"
#define kOfxPropShortLabel "OfxPropShortLabel"
#define kOfxPropLongLabel "OfxPropLongLabel"
#define kOfxPropPluginDescription "OfxPropPluginDescription"
#define kOfxPropVersion "OfxPropVersion"
#define kOfxPropVersionLabel "OfxPropVersionLabel"
#define kOfxPropTime "OfxPropTime"
#define kOfxPropInstanceData "OfxPropInstanceData"
#define kOfxPropEffectInstance "OfxPropEffectInstance"
#define kOfxPropChangeReason "OfxPropChangeReason"
#define kOfxPropIsInteractive "OfxPropIsInteractive"
#define kOfxPropHostOSHandle "OfxPropHostOSHandle"

#define kOfxChangeUserEdited "OfxChangeUserEdited"
#define kOfxChangePluginEdited "OfxChangePluginEdited"
#define kOfxChangeTime "OfxChangeTime"

#define kOfxTypeParameter "OfxTypeParameter"
#define kOfxTypeClip "OfxTypeClip"
#define kOfxTypeImage "OfxTypeImage"
#define kOfxTypeImageEffectHost "OfxTypeImageEffectHost"
#define kOfxTypeImageEffect "OfxTypeImageEffect"
#define kOfxTypeImageEffectInstance "OfxTypeImageEffectInstance"

/* ------------------------------------------------------------------ image effect properties */

#define kOfxImageEffectPropSupportedContexts "OfxImageEffectPropSupportedContexts"
#define kOfxImageEffectPropContext "OfxImageEffectPropContext"
#define kOfxImageEffectContextFilter "OfxImageEffectContextFilter"
#define kOfxImageEffectContextGeneral "OfxImageEffectContextGeneral"
#define kOfxImageEffectContextGenerator "OfxImageEffectContextGenerator"
#define kOfxImageEffectContextTransition "OfxImageEffectContextTransition"
#define kOfxImageEffectContextPaint "OfxImageEffectContextPaint"
#define kOfxImageEffectContextRetimer "OfxImageEffectContextRetimer"

#define kOfxImageEffectPluginPropGrouping "OfxImageEffectPluginPropGrouping"
#define kOfxImageEffectPluginPropSingleInstance "OfxImageEffectPluginPropSingleInstance"
#define kOfxImageEffectPluginRenderThreadSafety "OfxImageEffectPluginRenderThreadSafety"
#define kOfxImageEffectRenderUnsafe "OfxImageEffectRenderUnsafe"
#define kOfxImageEffectRenderInstanceSafe "OfxImageEffectRenderInstanceSafe"
#define kOfxImageEffectRenderFullySafe "OfxImageEffectRenderFullySafe"
#define kOfxImageEffectPluginPropHostFrameThreading "OfxImageEffectPluginPropHostFrameThreading"
#define kOfxImageEffectPluginPropFieldRenderTwiceAlways "OfxImageEffectPluginPropFieldRenderTwiceAlways"
/* Note: the string differs from the macro name in the specification. */
#define kOfxImageEffectPropSupportsMultipleClipDepths "OfxImageEffectPropMultipleClipDepths"
#define kOfxImageEffectPropSupportsMultipleClipPARs "OfxImageEffectPropSupportsMultipleClipPARs"
#define kOfxImageEffectPropSupportsMultiResolution "OfxImageEffectPropSupportsMultiResolution"
#define kOfxImageEffectPropSupportsTiles "OfxImageEffectPropSupportsTiles"
#define kOfxImageEffectPropTemporalClipAccess "OfxImageEffectPropTemporalClipAccess"
#define kOfxImageEffectPropSupportedPixelDepths "OfxImageEffectPropSupportedPixelDepths"
#define kOfxImageEffectPropSupportedComponents "OfxImageEffectPropSupportedComponents"
#define kOfxImageEffectPropClipPreferencesSlaveParam "OfxImageEffectPropClipPreferencesSlaveParam"
#define kOfxImageEffectInstancePropSequentialRender "OfxImageEffectInstancePropSequentialRender"
#define kOfxImageEffectHostPropIsBackground "OfxImageEffectHostPropIsBackground"

#define kOfxImageEffectPropPixelDepth "OfxImageEffectPropPixelDepth"
#define kOfxImageEffectPropComponents "OfxImageEffectPropComponents"
#define kOfxImageEffectPropPreMultiplication "OfxImageEffectPropPreMultiplication"
#define kOfxImageEffectPropRenderScale "OfxImageEffectPropRenderScale"
#define kOfxImageEffectPropRenderWindow "OfxImageEffectPropRenderWindow"
#define kOfxImageEffectPropFieldToRender "OfxImageEffectPropFieldToRender"
#define kOfxImageEffectPropRegionOfDefinition "OfxImageEffectPropRegionOfDefinition"
#define kOfxImageEffectPropRegionOfInterest "OfxImageEffectPropRegionOfInterest"
#define kOfxImageEffectPropFrameRange "OfxImageEffectPropFrameRange"
#define kOfxImageEffectPropFrameRate "OfxImageEffectPropFrameRate"
#define kOfxImageEffectPropProjectSize "OfxImageEffectPropProjectSize"
#define kOfxImageEffectFrameVarying "OfxImageEffectFrameVarying"

#define kOfxImageComponentNone "OfxImageComponentNone"
#define kOfxImageComponentRGBA "OfxImageComponentRGBA"
#define kOfxImageComponentRGB "OfxImageComponentRGB"
#define kOfxImageComponentAlpha "OfxImageComponentAlpha"

#define kOfxBitDepthNone "OfxBitDepthNone"
#define kOfxBitDepthByte "OfxBitDepthByte"
#define kOfxBitDepthShort "OfxBitDepthShort"
#define kOfxBitDepthHalf "OfxBitDepthHalf"
#define kOfxBitDepthFloat "OfxBitDepthFloat"

#define kOfxImageOpaque "OfxImageOpaque"
#define kOfxImagePreMultiplied "OfxImageAlphaPremultiplied"
#define kOfxImageUnPreMultiplied "OfxImageAlphaUnPremultiplied"

/* clip names fixed by the filter context */
#define kOfxImageEffectSimpleSourceClipName "Source"
#define kOfxImageEffectOutputClipName "Output"

#define kOfxImageClipPropOptional "OfxImageClipPropOptional"
#define kOfxImageClipPropIsMask "OfxImageClipPropIsMask"
#define kOfxImageClipPropConnected "OfxImageClipPropConnected"
#define kOfxImageClipPropUnmappedPixelDepth "OfxImageClipPropUnmappedPixelDepth"
#define kOfxImageClipPropUnmappedComponents "OfxImageClipPropUnmappedComponents"
#define kOfxImageClipPropFieldExtraction "OfxImageClipPropFieldExtraction"
#define kOfxImageFieldNone "OfxFieldNone"
#define kOfxImageFieldBoth "OfxFieldBoth"
#define kOfxImageFieldDoubled "OfxFieldDoubled"

/* per-clip out-argument prefixes: the clip name is appended ("OfxImageClipPropRoI_Source") */
#define kOfxImageClipPropRoIPrefix "OfxImageClipPropRoI_"
#define kOfxImageClipPropComponentsPrefix "OfxImageClipPropComponents_"
#define kOfxImageClipPropDepthPrefix "OfxImageClipPropDepth_"
#define kOfxImageClipPropPARPrefix "OfxImageClipPropPAR_"

/* images */
#define kOfxImagePropData "OfxImagePropData"
#define kOfxImagePropBounds "OfxImagePropBounds"
#define kOfxImagePropRegionOfDefinition "OfxImagePropRegionOfDefinition"
#define kOfxImagePropRowBytes "OfxImagePropRowBytes"
#define kOfxImagePropPixelAspectRatio "OfxImagePropPixelAspectRatio"
#define kOfxImagePropField "OfxImagePropField"
#define kOfxImagePropUniqueIdentifier "OfxImagePropUniqueIdentifier"

/* ------------------------------------------------------------------ parameters */

#define kOfxParamTypeInteger "OfxParamTypeInteger"
#define kOfxParamTypeDouble "OfxParamTypeDouble"
#define kOfxParamTypeBoolean "OfxParamTypeBoolean"
#define kOfxParamTypeChoice "OfxParamTypeChoice"
#define kOfxParamTypeRGBA "OfxParamTypeRGBA"
#define kOfxParamTypeRGB "OfxParamTypeRGB"
#define kOfxParamTypeDouble2D "OfxParamTypeDouble2D"
#define kOfxParamTypeString "OfxParamTypeString"
#define kOfxParamTypeGroup "OfxParamTypeGroup"
#define kOfxParamTypePage "OfxParamTypePage"
#define kOfxParamTypePushButton "OfxParamTypePushButton"

#define kOfxParamPropType "OfxParamPropType"
#define kOfxParamPropScriptName "OfxParamPropScriptName"
#define kOfxParamPropHint "OfxParamPropHint"
#define kOfxParamPropDefault "OfxParamPropDefault"
#define kOfxParamPropAnimates "OfxParamPropAnimates"
#define kOfxParamPropEnabled "OfxParamPropEnabled"
#define kOfxParamPropSecret "OfxParamPropSecret"
#define kOfxParamPropParent "OfxParamPropParent"
#define kOfxParamPropPageChild "OfxParamPropPageChild"
#define kOfxParamPropMin "OfxParamPropMin"
#define kOfxParamPropMax "OfxParamPropMax"
#define kOfxParamPropDisplayMin "OfxParamPropDisplayMin"
#define kOfxParamPropDisplayMax "OfxParamPropDisplayMax"
#define kOfxParamPropIncrement "OfxParamPropIncrement"
#define kOfxParamPropDigits "OfxParamPropDigits"
#define kOfxParamPropChoiceOption "OfxParamPropChoiceOption"
#define kOfxParamPropStringMode "OfxParamPropStringMode"
#define kOfxParamPropStringFilePathExists "OfxParamPropStringFilePathExists"
#define kOfxParamPropEvaluateOnChange "OfxParamPropEvaluateOnChange"
#define kOfxParamStringIsSingleLine "OfxParamStringIsSingleLine"
#define kOfxParamStringIsFilePath "OfxParamStringIsFilePath"

/* ------------------------------------------------------------------ entry points */

/* Declared for the plugin side; a host looks these up with dlsym. */
GS_OFX_EXPORT int OfxGetNumberOfPlugins(void);
GS_OFX_EXPORT OfxPlugin *OfxGetPlugin(int nth);

#ifdef __cplusplus
}
#endif

#endif /* GSRENDER_OFX_ABI_H */
