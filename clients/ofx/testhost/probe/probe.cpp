// HostProbe: a small OpenFX plugin (C API only) that the test host's own tests load to check
// what the SDK's examples do not exercise: temporal clip access (from spawned threads too), string
// parameters read during render, the message suites (v1 and persistent v2), progress and time
// line suites, parameters set by the plugin, and failures on demand (error status, exception,
// crash, a render that only stops when aborted, one that never stops).
//
// Output: for every pixel of the render window, the mean over frames t+offset-radius ..
// t+offset+radius (clamped to the source range) of the source pixel, rounded half up for
// integer depths. Thread-safety declared from LIVEEDIT_PROBE_THREAD_SAFETY (default fully safe).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxMessage.h"
#include "ofxMultiThread.h"
#include "ofxParam.h"
#include "ofxProgress.h"
#include "ofxProperty.h"
#include "ofxTimeLine.h"

#if defined(_WIN32)
#define PROBE_EXPORT __declspec(dllexport)
#else
#define PROBE_EXPORT __attribute__((visibility("default")))
#endif

namespace {

OfxHost *gHost = nullptr;
const OfxImageEffectSuiteV1 *gEffect = nullptr;
const OfxPropertySuiteV1 *gProp = nullptr;
const OfxParameterSuiteV1 *gParam = nullptr;
const OfxMultiThreadSuiteV1 *gThread = nullptr;
const OfxMessageSuiteV1 *gMessage = nullptr;
const OfxMessageSuiteV2 *gMessage2 = nullptr;
const OfxProgressSuiteV1 *gProgress = nullptr;
const OfxTimeLineSuiteV1 *gTimeLine = nullptr;

const char *kFailOptions[] = {"none", "render_failed", "render_memory", "throw", "crash", "hang", "hang_hard",
                              "create_failed"};

struct Params {
  OfxParamHandle offset, radius, fetchThreads, fail, text, echo, status, persistent, progress, barrier;
};

// renders inside the render action right now, and the most at once since it was last zero
// (for the "barrier" parameter)
std::mutex gInRenderMutex;
int gInRender = 0, gPeak = 0;

Params *params(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props;
  gEffect->getPropertySet(effect, &props);
  void *p = nullptr;
  gProp->propGetPointer(props, kOfxPropInstanceData, 0, &p);
  return static_cast<Params *>(p);
}

OfxStatus onLoad() {
  if (!gHost) return kOfxStatErrMissingHostFeature;
  gEffect = static_cast<const OfxImageEffectSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxImageEffectSuite, 1));
  gProp = static_cast<const OfxPropertySuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxPropertySuite, 1));
  gParam = static_cast<const OfxParameterSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxParameterSuite, 1));
  gThread = static_cast<const OfxMultiThreadSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxMultiThreadSuite, 1));
  gMessage = static_cast<const OfxMessageSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxMessageSuite, 1));
  gMessage2 = static_cast<const OfxMessageSuiteV2 *>(gHost->fetchSuite(gHost->host, kOfxMessageSuite, 2));
  gProgress = static_cast<const OfxProgressSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxProgressSuite, 1));
  gTimeLine = static_cast<const OfxTimeLineSuiteV1 *>(gHost->fetchSuite(gHost->host, kOfxTimeLineSuite, 1));
  if (!gEffect || !gProp || !gParam || !gThread || !gMessage) return kOfxStatErrMissingHostFeature;
  return kOfxStatOK;
}

OfxStatus describe(OfxImageEffectHandle effect) {
  OfxPropertySetHandle p;
  gEffect->getPropertySet(effect, &p);
  gProp->propSetString(p, kOfxPropLabel, 0, "Host Probe");
  gProp->propSetString(p, kOfxImageEffectPluginPropGrouping, 0, "LiveEdit Tests");
  gProp->propSetString(p, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
  gProp->propSetString(p, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
  gProp->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthByte);
  gProp->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
  gProp->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthFloat);
  gProp->propSetInt(p, kOfxImageEffectPropTemporalClipAccess, 0, 1);
  gProp->propSetInt(p, kOfxImageEffectPropSupportsTiles, 0, 1);
  gProp->propSetInt(p, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
  const char *safety = std::getenv("LIVEEDIT_PROBE_THREAD_SAFETY");
  std::string s = safety ? safety : "fully";
  gProp->propSetString(p, kOfxImageEffectPluginRenderThreadSafety, 0,
                       s == "unsafe"     ? kOfxImageEffectRenderUnsafe
                       : s == "instance" ? kOfxImageEffectRenderInstanceSafe
                                         : kOfxImageEffectRenderFullySafe);
  gProp->propSetInt(p, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
  return kOfxStatOK;
}

void defineInt(OfxParamSetHandle set, const char *name, int dflt, int lo, int hi, const char *hint) {
  OfxPropertySetHandle p;
  gParam->paramDefine(set, kOfxParamTypeInteger, name, &p);
  gProp->propSetInt(p, kOfxParamPropDefault, 0, dflt);
  gProp->propSetInt(p, kOfxParamPropMin, 0, lo);
  gProp->propSetInt(p, kOfxParamPropMax, 0, hi);
  gProp->propSetString(p, kOfxParamPropHint, 0, hint);
  gProp->propSetString(p, kOfxPropLabel, 0, name);
}

void defineBool(OfxParamSetHandle set, const char *name, const char *hint) {
  OfxPropertySetHandle p;
  gParam->paramDefine(set, kOfxParamTypeBoolean, name, &p);
  gProp->propSetInt(p, kOfxParamPropDefault, 0, 0);
  gProp->propSetString(p, kOfxParamPropHint, 0, hint);
  gProp->propSetString(p, kOfxPropLabel, 0, name);
}

OfxStatus describeInContext(OfxImageEffectHandle effect, OfxPropertySetHandle) {
  OfxPropertySetHandle p;
  gEffect->clipDefine(effect, kOfxImageEffectOutputClipName, &p);
  gProp->propSetString(p, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
  gEffect->clipDefine(effect, kOfxImageEffectSimpleSourceClipName, &p);
  gProp->propSetString(p, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
  gProp->propSetInt(p, kOfxImageEffectPropTemporalClipAccess, 0, 1);

  OfxParamSetHandle set;
  gEffect->getParamSet(effect, &set);
  defineInt(set, "offset", 0, -1000, 1000, "Output frame t shows source frames around t + offset");
  defineInt(set, "radius", 0, 0, 50, "Average source frames t+offset-radius .. t+offset+radius");
  defineInt(set, "fetch_threads", 1, 1, 16, "Fetch the source frames from this many spawned threads");
  gParam->paramDefine(set, kOfxParamTypeChoice, "fail", &p);
  for (int i = 0; i < int(sizeof kFailOptions / sizeof *kFailOptions); i++)
    gProp->propSetString(p, kOfxParamPropChoiceOption, i, kFailOptions[i]);
  gProp->propSetInt(p, kOfxParamPropDefault, 0, 0);
  gProp->propSetString(p, kOfxParamPropHint, 0, "Fail on purpose");
  gProp->propSetString(p, kOfxPropLabel, 0, "Fail");
  gParam->paramDefine(set, kOfxParamTypeString, "text", &p);
  gProp->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsMultiLine);
  gProp->propSetString(p, kOfxParamPropDefault, 0, "");
  gProp->propSetString(p, kOfxParamPropHint, 0, "Text echoed back in messages");
  gProp->propSetString(p, kOfxPropLabel, 0, "Text");
  defineBool(set, "echo", "Post a log message with the time and text from every render");
  defineBool(set, "persistent", "Set a persistent message (message suite v2) while text is not empty");
  defineBool(set, "progress", "Report progress through the progress suite while rendering");
  defineInt(set, "barrier", 0, 0, 64,
            "Each render waits until this many renders are inside the plugin at once (fails after 20 s)");
  gParam->paramDefine(set, kOfxParamTypeString, "status", &p);
  gProp->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsLabel);
  gProp->propSetString(p, kOfxParamPropDefault, 0, "idle");
  gProp->propSetInt(p, kOfxParamPropEnabled, 0, 0);
  gProp->propSetInt(p, kOfxParamPropPersistant, 0, 0);
  gProp->propSetString(p, kOfxPropLabel, 0, "Status");
  return kOfxStatOK;
}

int choice(OfxParamHandle h, OfxTime t) {
  int v = 0;
  gParam->paramGetValueAtTime(h, t, &v);
  return v;
}

OfxStatus createInstance(OfxImageEffectHandle effect) {
  OfxParamSetHandle set;
  gEffect->getParamSet(effect, &set);
  auto *p = new Params;
  gParam->paramGetHandle(set, "offset", &p->offset, nullptr);
  gParam->paramGetHandle(set, "radius", &p->radius, nullptr);
  gParam->paramGetHandle(set, "fetch_threads", &p->fetchThreads, nullptr);
  gParam->paramGetHandle(set, "fail", &p->fail, nullptr);
  gParam->paramGetHandle(set, "text", &p->text, nullptr);
  gParam->paramGetHandle(set, "echo", &p->echo, nullptr);
  gParam->paramGetHandle(set, "status", &p->status, nullptr);
  gParam->paramGetHandle(set, "persistent", &p->persistent, nullptr);
  gParam->paramGetHandle(set, "progress", &p->progress, nullptr);
  gParam->paramGetHandle(set, "barrier", &p->barrier, nullptr);
  if (std::string(kFailOptions[choice(p->fail, 0)]) == "create_failed") {
    delete p;
    return kOfxStatFailed;
  }
  OfxPropertySetHandle props;
  gEffect->getPropertySet(effect, &props);
  gProp->propSetPointer(props, kOfxPropInstanceData, 0, p);
  return kOfxStatOK;
}

OfxStatus destroyInstance(OfxImageEffectHandle effect) {
  delete params(effect);
  return kOfxStatOK;
}

OfxStatus instanceChanged(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs) {
  char *type = nullptr, *name = nullptr, *reason = nullptr;
  gProp->propGetString(inArgs, kOfxPropType, 0, &type);
  gProp->propGetString(inArgs, kOfxPropName, 0, &name);
  gProp->propGetString(inArgs, kOfxPropChangeReason, 0, &reason);
  Params *p = params(effect);
  if (!p || !type || !name) return kOfxStatReplyDefault;
  double time = 0;
  gProp->propGetDouble(inArgs, kOfxPropTime, 0, &time);
  if (std::strcmp(type, kOfxTypeParameter) == 0 && std::strcmp(name, "text") == 0) {
    const char *text = nullptr;
    gParam->paramGetValue(p->text, &text);
    std::string status = std::string("text set (") + (reason ? reason : "?") + "): " + (text ? text : "");
    gParam->paramSetValue(p->status, status.c_str());
    int persistent = 0;
    gParam->paramGetValue(p->persistent, &persistent);
    if (persistent && gMessage2) {
      if (text && *text)
        gMessage2->setPersistentMessage(effect, kOfxMessageWarning, "probe.persistent", "%s", text);
      else
        gMessage2->clearPersistentMessage(effect);
    }
    return kOfxStatOK;
  }
  if (std::strcmp(type, kOfxTypeClip) == 0) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "clip %s changed (%s) at %g", name, reason ? reason : "?", time);
    gMessage->message(effect, kOfxMessageLog, "probe.clip", "%s", msg);
    return kOfxStatOK;
  }
  return kOfxStatReplyDefault;
}

struct Fetch {
  OfxImageClipHandle clip;
  std::vector<double> times;
  std::vector<OfxPropertySetHandle> images;
  std::atomic<int> failures{0};
};

void fetchSlice(unsigned int index, unsigned int n, void *arg) {
  auto *f = static_cast<Fetch *>(arg);
  for (size_t i = index; i < f->times.size(); i += n) {
    OfxPropertySetHandle img = nullptr;
    if (gEffect->clipGetImage(f->clip, f->times[i], nullptr, &img) != kOfxStatOK) f->failures++;
    f->images[i] = img;
  }
}

int componentBytes(OfxPropertySetHandle img) {
  char *depth = nullptr;
  gProp->propGetString(img, kOfxImageEffectPropPixelDepth, 0, &depth);
  if (!depth) return 0;
  if (std::strcmp(depth, kOfxBitDepthByte) == 0) return 1;
  if (std::strcmp(depth, kOfxBitDepthShort) == 0) return 2;
  if (std::strcmp(depth, kOfxBitDepthFloat) == 0) return 4;
  return 0;
}

double component(const unsigned char *p, int bytes) {
  if (bytes == 1) return *p;
  if (bytes == 2) {
    unsigned short v;
    std::memcpy(&v, p, 2);
    return v;
  }
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

OfxStatus renderFrame(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs);

// Proves renders run at the same time: each waits until `barrier` renders are inside at once.
OfxStatus render(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs) {
  Params *p = params(effect);
  if (!p) return kOfxStatErrBadHandle;
  OfxTime time = 0;
  gProp->propGetDouble(inArgs, kOfxPropTime, 0, &time);
  int barrier = 0;
  gParam->paramGetValueAtTime(p->barrier, time, &barrier);
  {
    std::lock_guard<std::mutex> l(gInRenderMutex);
    if (++gInRender == 1) gPeak = 0;  // a new batch of renders
    gPeak = std::max(gPeak, gInRender);
  }
  struct Leave {
    ~Leave() {
      std::lock_guard<std::mutex> l(gInRenderMutex);
      --gInRender;
    }
  } leave;
  if (barrier > 1) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      {
        std::lock_guard<std::mutex> l(gInRenderMutex);
        if (gPeak >= barrier) break;
      }
      if (std::chrono::steady_clock::now() > until || gEffect->abort(effect)) {
        gMessage->message(effect, kOfxMessageError, "probe.barrier", "fewer than %d renders at once", barrier);
        return kOfxStatFailed;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return renderFrame(effect, inArgs);
}

OfxStatus renderFrame(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs) {
  Params *p = params(effect);
  if (!p) return kOfxStatErrBadHandle;
  OfxTime time = 0;
  OfxRectI win;
  gProp->propGetDouble(inArgs, kOfxPropTime, 0, &time);
  gProp->propGetIntN(inArgs, kOfxImageEffectPropRenderWindow, 4, &win.x1);
  std::string fail = kFailOptions[choice(p->fail, time)];
  if (fail == "render_failed") {
    gMessage->message(effect, kOfxMessageError, "probe.fail", "render failed on purpose at %g", time);
    return kOfxStatFailed;
  }
  if (fail == "render_memory") return kOfxStatErrMemory;
  if (fail == "throw") throw std::runtime_error("probe: exception thrown on purpose");
  if (fail == "crash") {
    volatile int *nowhere = nullptr;
    *nowhere = 1;
  }
  if (fail == "hang" || fail == "hang_hard") {
    while (fail == "hang_hard" || !gEffect->abort(effect)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return kOfxStatOK;
  }
  int echo = 0, progress = 0, offset = 0, radius = 0, nThreads = 1;
  gParam->paramGetValueAtTime(p->echo, time, &echo);
  gParam->paramGetValueAtTime(p->progress, time, &progress);
  gParam->paramGetValueAtTime(p->offset, time, &offset);
  gParam->paramGetValueAtTime(p->radius, time, &radius);
  gParam->paramGetValueAtTime(p->fetchThreads, time, &nThreads);
  if (echo) {
    const char *text = nullptr;
    gParam->paramGetValueAtTime(p->text, time, &text);
    double now = -1;
    if (gTimeLine) gTimeLine->getTime(effect, &now);
    int interactive = 0, sequential = 0, draft = 0;
    gProp->propGetInt(inArgs, kOfxImageEffectPropInteractiveRenderStatus, 0, &interactive);
    gProp->propGetInt(inArgs, kOfxImageEffectPropSequentialRenderStatus, 0, &sequential);
    gProp->propGetInt(inArgs, kOfxImageEffectPropRenderQualityDraft, 0, &draft);
    gMessage->message(effect, kOfxMessageLog, "probe.echo",
                      "t=%g text=%s interactive=%d sequential=%d draft=%d timeline=%g", time, text ? text : "(null)",
                      interactive, sequential, draft, now);
  }
  if (progress && gProgress) gProgress->progressStart(effect, "probe render");

  OfxImageClipHandle src, out;
  gEffect->clipGetHandle(effect, kOfxImageEffectSimpleSourceClipName, &src, nullptr);
  gEffect->clipGetHandle(effect, kOfxImageEffectOutputClipName, &out, nullptr);
  OfxPropertySetHandle srcProps;
  gEffect->clipGetPropertySet(src, &srcProps);
  double range[2] = {0, 0};
  gProp->propGetDoubleN(srcProps, kOfxImageEffectPropFrameRange, 2, range);

  Fetch f;
  f.clip = src;
  for (int k = -radius; k <= radius; k++) {
    double t = time + offset + k;
    if (t >= range[0] && t <= range[1]) f.times.push_back(t);
  }
  if (f.times.empty()) f.times.push_back(std::fmin(range[1], std::fmax(range[0], time + offset)));
  f.images.assign(f.times.size(), nullptr);
  if (nThreads > 1) gThread->multiThread(fetchSlice, unsigned(nThreads), &f);
  else fetchSlice(0, 1, &f);

  OfxPropertySetHandle dst = nullptr;
  OfxStatus status = kOfxStatOK;
  if (f.failures.load() || gEffect->clipGetImage(out, time, nullptr, &dst) != kOfxStatOK) {
    status = gEffect->abort(effect) ? kOfxStatOK : kOfxStatFailed;
  } else {
    int bytes = componentBytes(dst);
    void *dptr = nullptr;
    int drow = 0;
    OfxRectI db;
    gProp->propGetPointer(dst, kOfxImagePropData, 0, &dptr);
    gProp->propGetInt(dst, kOfxImagePropRowBytes, 0, &drow);
    gProp->propGetIntN(dst, kOfxImagePropBounds, 4, &db.x1);
    struct Src {
      const unsigned char *data;
      int row;
      OfxRectI b;
    };
    std::vector<Src> srcs;
    for (auto img : f.images) {
      Src s;
      void *ptr = nullptr;
      gProp->propGetPointer(img, kOfxImagePropData, 0, &ptr);
      gProp->propGetInt(img, kOfxImagePropRowBytes, 0, &s.row);
      gProp->propGetIntN(img, kOfxImagePropBounds, 4, &s.b.x1);
      s.data = static_cast<const unsigned char *>(ptr);
      if (componentBytes(img) != bytes) status = kOfxStatErrImageFormat;
      srcs.push_back(s);
    }
    const double n = double(srcs.size());
    for (int y = win.y1; y < win.y2 && status == kOfxStatOK; y++) {
      if (gEffect->abort(effect)) break;
      if (progress && gProgress) gProgress->progressUpdate(effect, double(y - win.y1) / double(win.y2 - win.y1));
      unsigned char *drowp = static_cast<unsigned char *>(dptr) + ptrdiff_t(y - db.y1) * drow;
      for (int x = win.x1; x < win.x2; x++) {
        unsigned char *d = drowp + ptrdiff_t(x - db.x1) * 4 * bytes;
        for (int c = 0; c < 4; c++) {
          double sum = 0;
          for (auto &s : srcs) {
            if (x < s.b.x1 || x >= s.b.x2 || y < s.b.y1 || y >= s.b.y2) continue;
            sum += component(s.data + ptrdiff_t(y - s.b.y1) * s.row + ptrdiff_t(x - s.b.x1) * 4 * bytes + c * bytes, bytes);
          }
          double v = sum / n;
          if (bytes == 1) d[c] = (unsigned char)std::floor(v + 0.5);
          else if (bytes == 2) {
            unsigned short sv = (unsigned short)std::floor(v + 0.5);
            std::memcpy(d + 2 * c, &sv, 2);
          } else {
            float fv = float(v);
            std::memcpy(d + 4 * c, &fv, 4);
          }
        }
      }
    }
  }
  for (auto img : f.images)
    if (img) gEffect->clipReleaseImage(img);
  if (dst) gEffect->clipReleaseImage(dst);
  if (progress && gProgress) gProgress->progressEnd(effect);
  return status;
}

OfxStatus getFramesNeeded(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs, OfxPropertySetHandle outArgs) {
  Params *p = params(effect);
  if (!p) return kOfxStatReplyDefault;
  double time = 0;
  gProp->propGetDouble(inArgs, kOfxPropTime, 0, &time);
  int offset = 0, radius = 0;
  gParam->paramGetValueAtTime(p->offset, time, &offset);
  gParam->paramGetValueAtTime(p->radius, time, &radius);
  double range[2] = {time + offset - radius, time + offset + radius};
  gProp->propSetDoubleN(outArgs, "OfxImageClipPropFrameRange_Source", 2, range);
  return kOfxStatOK;
}

// Begin/EndSequenceRender, posted as log messages when echo is on
OfxStatus sequence(OfxImageEffectHandle effect, OfxPropertySetHandle inArgs, const char *what) {
  Params *p = params(effect);
  int echo = 0;
  if (p) gParam->paramGetValue(p->echo, &echo);
  if (!echo) return kOfxStatOK;
  double range[2] = {0, 0};
  int sequential = 0, interactive = 0;
  gProp->propGetDoubleN(inArgs, kOfxImageEffectPropFrameRange, 2, range);
  gProp->propGetInt(inArgs, kOfxImageEffectPropSequentialRenderStatus, 0, &sequential);
  gProp->propGetInt(inArgs, kOfxImageEffectPropInteractiveRenderStatus, 0, &interactive);
  gMessage->message(effect, kOfxMessageLog, "probe.sequence", "%s %g..%g sequential=%d interactive=%d", what, range[0],
                    range[1], sequential, interactive);
  return kOfxStatOK;
}

OfxStatus mainEntry(const char *action, const void *handle, OfxPropertySetHandle inArgs, OfxPropertySetHandle outArgs) {
  auto effect = (OfxImageEffectHandle)handle;
  if (std::strcmp(action, kOfxActionLoad) == 0) return onLoad();
  if (std::strcmp(action, kOfxActionDescribe) == 0) return describe(effect);
  if (std::strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) return describeInContext(effect, inArgs);
  if (std::strcmp(action, kOfxActionCreateInstance) == 0) return createInstance(effect);
  if (std::strcmp(action, kOfxActionDestroyInstance) == 0) return destroyInstance(effect);
  if (std::strcmp(action, kOfxActionInstanceChanged) == 0) return instanceChanged(effect, inArgs);
  if (std::strcmp(action, kOfxImageEffectActionRender) == 0) return render(effect, inArgs);  // may throw: on purpose
  if (std::strcmp(action, kOfxImageEffectActionGetFramesNeeded) == 0) return getFramesNeeded(effect, inArgs, outArgs);
  if (std::strcmp(action, kOfxImageEffectActionBeginSequenceRender) == 0) return sequence(effect, inArgs, "begin");
  if (std::strcmp(action, kOfxImageEffectActionEndSequenceRender) == 0) return sequence(effect, inArgs, "end");
  return kOfxStatReplyDefault;
}

void setHost(OfxHost *host) { gHost = host; }

OfxPlugin gPlugin = {kOfxImageEffectPluginApi, 1, "org.liveedit.testhost.Probe", 1, 0, setHost, mainEntry};

}  // namespace

extern "C" {
PROBE_EXPORT OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &gPlugin : nullptr; }
PROBE_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }
}
