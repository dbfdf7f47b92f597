#include "host.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <thread>

#include "ofxMessage.h"

namespace th {

thread_local RenderJob *tCurrentJob = nullptr;
TestHost *gHost = nullptr;

namespace {
thread_local bool tSpawned = false;
thread_local unsigned tThreadIndex = 0;

std::mutex gJobsMutex;
std::vector<RenderJob *> gJobs;

std::string vformat(const char *format, va_list args) {
  if (!format) return "";
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return "";
  std::string s(size_t(n) + 1, '\0');
  std::vsnprintf(&s[0], s.size(), format, args);
  s.resize(size_t(n));
  return s;
}

OfxStatus messageEvent(const char *source, const char *type, const char *id, const std::string &text,
                       bool persistent) {
  Json e = Json::object();
  e.set("type", type ? type : "").set("id", id ? id : "").set("text", text).set("persistent", persistent);
  e.set("from", source);
  emitEvent("message", e);
  if (type && std::string(type) == kOfxMessageQuestion) return gHost ? gHost->questionReply : kOfxStatReplyYes;
  return kOfxStatOK;
}
}  // namespace

std::string statusName(OfxStatus st) {
  switch (st) {
    case kOfxStatOK: return "kOfxStatOK";
    case kOfxStatFailed: return "kOfxStatFailed";
    case kOfxStatErrFatal: return "kOfxStatErrFatal";
    case kOfxStatErrUnknown: return "kOfxStatErrUnknown";
    case kOfxStatErrMissingHostFeature: return "kOfxStatErrMissingHostFeature";
    case kOfxStatErrUnsupported: return "kOfxStatErrUnsupported";
    case kOfxStatErrExists: return "kOfxStatErrExists";
    case kOfxStatErrFormat: return "kOfxStatErrFormat";
    case kOfxStatErrMemory: return "kOfxStatErrMemory";
    case kOfxStatErrBadHandle: return "kOfxStatErrBadHandle";
    case kOfxStatErrBadIndex: return "kOfxStatErrBadIndex";
    case kOfxStatErrValue: return "kOfxStatErrValue";
    case kOfxStatReplyYes: return "kOfxStatReplyYes";
    case kOfxStatReplyNo: return "kOfxStatReplyNo";
    case kOfxStatReplyDefault: return "kOfxStatReplyDefault";
    case kOfxStatErrImageFormat: return "kOfxStatErrImageFormat";
    default: return "status " + std::to_string(st);
  }
}

void registerJob(RenderJob *job) {
  std::lock_guard<std::mutex> l(gJobsMutex);
  gJobs.push_back(job);
}

void unregisterJob(RenderJob *job) {
  std::lock_guard<std::mutex> l(gJobsMutex);
  gJobs.erase(std::remove(gJobs.begin(), gJobs.end(), job), gJobs.end());
}

// The job a fetch belongs to: the calling render thread's own, else the only job rendering
// that time (a plugin's own worker thread fetching for a render in flight).
static RenderJob *jobFor(double time) {
  if (tCurrentJob) return tCurrentJob;
  std::lock_guard<std::mutex> l(gJobsMutex);
  RenderJob *found = nullptr;
  for (RenderJob *j : gJobs) {
    if (j->time != time) continue;
    if (found) return nullptr;  // ambiguous
    found = j;
  }
  return found;
}

// The render scale for a fetch: the calling render thread's, else the one all renders in flight
// share (a plugin's own thread), else 1 (outside renders).
static OfxPointD renderScaleNow() {
  if (tCurrentJob) return tCurrentJob->scale;
  std::lock_guard<std::mutex> l(gJobsMutex);
  OfxPointD s{1, 1};
  bool first = true;
  for (RenderJob *j : gJobs) {
    if (!first && (j->scale.x != s.x || j->scale.y != s.y)) return OfxPointD{1, 1};
    s = j->scale;
    first = false;
  }
  return s;
}

////////////////////////////////////////////////////////////////////////////////
// host

TestHost::TestHost(const std::string &name, const std::string &label) {
  gHost = this;
  _properties.setStringProperty(kOfxPropName, name);
  _properties.setStringProperty(kOfxPropLabel, label);
  _properties.setIntProperty(kOfxPropAPIVersion, 1, 0);
  _properties.setIntProperty(kOfxPropAPIVersion, 5, 1);
  _properties.setIntProperty(kOfxPropVersion, 1, 0);
  _properties.setIntProperty(kOfxPropVersion, 0, 1);
  _properties.setStringProperty(kOfxPropVersionLabel, "1.0");
  _properties.setIntProperty(kOfxImageEffectHostPropIsBackground, 0);
  _properties.setIntProperty(kOfxImageEffectPropSupportsOverlays, 0);
  _properties.setIntProperty(kOfxImageEffectPropSupportsMultiResolution, 0);
  _properties.setIntProperty(kOfxImageEffectPropSupportsTiles, 1);
  _properties.setIntProperty(kOfxImageEffectPropTemporalClipAccess, 1);
  _properties.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentRGBA, 0);
  _properties.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentAlpha, 1);
  _properties.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthByte, 0);
  _properties.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthShort, 1);
  _properties.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthFloat, 2);
  _properties.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextFilter, 0);
  _properties.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextGeneral, 1);
  _properties.setIntProperty(kOfxImageEffectPropSupportsMultipleClipDepths, 0);
  _properties.setIntProperty(kOfxImageEffectPropSupportsMultipleClipPARs, 0);
  _properties.setIntProperty(kOfxImageEffectPropSetableFrameRate, 0);
  _properties.setIntProperty(kOfxImageEffectPropSetableFielding, 0);
  _properties.setIntProperty(kOfxParamHostPropSupportsCustomInteract, 0);
  _properties.setIntProperty(kOfxParamHostPropSupportsStringAnimation, 0);
  _properties.setIntProperty(kOfxParamHostPropSupportsChoiceAnimation, 0);
  _properties.setIntProperty(kOfxParamHostPropSupportsBooleanAnimation, 0);
  _properties.setIntProperty(kOfxParamHostPropSupportsCustomAnimation, 0);
  _properties.setIntProperty(kOfxParamHostPropMaxParameters, -1);
  _properties.setIntProperty(kOfxParamHostPropMaxPages, 0);
  _properties.setIntProperty(kOfxParamHostPropPageRowColumnCount, 0, 0);
  _properties.setIntProperty(kOfxParamHostPropPageRowColumnCount, 0, 1);
  _properties.setIntProperty(kOfxImageEffectInstancePropSequentialRender, 2);  // both kinds
}

OFX::Host::ImageEffect::Instance *TestHost::newInstance(void *clientData,
                                                        OFX::Host::ImageEffect::ImageEffectPlugin *plugin,
                                                        OFX::Host::ImageEffect::Descriptor &desc,
                                                        const std::string &context) {
  bool interactive = clientData != nullptr && *static_cast<bool *>(clientData);
  return new Effect(plugin, desc, context, interactive);
}

OFX::Host::ImageEffect::Descriptor *TestHost::makeDescriptor(OFX::Host::ImageEffect::ImageEffectPlugin *plugin) {
  return new OFX::Host::ImageEffect::Descriptor(plugin);
}

OFX::Host::ImageEffect::Descriptor *TestHost::makeDescriptor(const OFX::Host::ImageEffect::Descriptor &rootContext,
                                                             OFX::Host::ImageEffect::ImageEffectPlugin *plug) {
  return new OFX::Host::ImageEffect::Descriptor(rootContext, plug);
}

OFX::Host::ImageEffect::Descriptor *TestHost::makeDescriptor(const std::string &bundlePath,
                                                             OFX::Host::ImageEffect::ImageEffectPlugin *plug) {
  return new OFX::Host::ImageEffect::Descriptor(bundlePath, plug);
}

OfxStatus TestHost::vmessage(const char *type, const char *id, const char *format, va_list args) {
  return messageEvent("host", type, id, vformat(format, args), false);
}

OfxStatus TestHost::setPersistentMessage(const char *type, const char *id, const char *format, va_list args) {
  return messageEvent("host", type, id, vformat(format, args), true);
}

OfxStatus TestHost::clearPersistentMessage() {
  emitEvent("message_cleared", Json::object().set("from", "host"));
  return kOfxStatOK;
}

OfxStatus TestHost::multiThread(OfxThreadFunctionV1 func, unsigned int nThreads, void *customArg) {
  if (!func) return kOfxStatFailed;
  if (nThreads == 0) nThreads = 1;
  multiThreadCalls++;
  if (tSpawned) {
    // a spawned thread asking for more threads: run the pieces here, one after another
    for (unsigned i = 0; i < nThreads; i++) func(i, nThreads, customArg);
    return kOfxStatOK;
  }
  RenderJob *job = tCurrentJob;  // the spawned threads work for the same render
  std::atomic<int> failed{0};
  auto body = [&](unsigned i) {
    tSpawned = true;
    tThreadIndex = i;
    tCurrentJob = job;
    try {
      func(i, nThreads, customArg);
    } catch (...) {
      failed = 1;  // an exception thrown across the C API: reported, never propagated
    }
  };
  std::vector<std::thread> threads;
  unsigned started = 0;
  try {
    for (unsigned i = 0; i < nThreads; i++) {
      threads.emplace_back(body, i);
      started++;
    }
  } catch (...) {
    // could not start more threads: the rest run here
  }
  spawnedThreads += started;
  for (unsigned i = started; i < nThreads; i++) {
    bool was = tSpawned;
    unsigned idx = tThreadIndex;
    body(i);
    tSpawned = was;
    tThreadIndex = idx;
    tCurrentJob = job;
  }
  for (auto &t : threads) t.join();
  return failed ? kOfxStatFailed : kOfxStatOK;
}

OfxStatus TestHost::multiThreadNumCPUS(unsigned int *nCPUs) const {
  if (!nCPUs) return kOfxStatFailed;
  unsigned n = cpus ? cpus : std::thread::hardware_concurrency();
  *nCPUs = n ? n : 1;
  return kOfxStatOK;
}

OfxStatus TestHost::multiThreadIndex(unsigned int *threadIndex) const {
  if (!threadIndex) return kOfxStatFailed;
  *threadIndex = tSpawned ? tThreadIndex : 0;
  return kOfxStatOK;
}

int TestHost::multiThreadIsSpawnedThread() const { return tSpawned ? 1 : 0; }

OfxStatus TestHost::mutexCreate(OfxMutexHandle *mutex, int lockCount) {
  if (!mutex) return kOfxStatFailed;
  auto *m = new std::recursive_mutex;
  for (int i = 0; i < lockCount; i++) m->lock();
  *mutex = reinterpret_cast<OfxMutexHandle>(m);
  std::lock_guard<std::mutex> l(mutexesMutex_);
  mutexes_.insert(*mutex);
  return kOfxStatOK;
}

OfxStatus TestHost::mutexDestroy(const OfxMutexHandle mutex) {
  {
    std::lock_guard<std::mutex> l(mutexesMutex_);
    if (!mutexes_.erase(mutex)) return kOfxStatErrBadHandle;
  }
  delete reinterpret_cast<std::recursive_mutex *>(mutex);
  return kOfxStatOK;
}

OfxStatus TestHost::mutexLock(const OfxMutexHandle mutex) {
  {
    std::lock_guard<std::mutex> l(mutexesMutex_);
    if (!mutexes_.count(mutex)) return kOfxStatErrBadHandle;
  }
  reinterpret_cast<std::recursive_mutex *>(mutex)->lock();
  return kOfxStatOK;
}

OfxStatus TestHost::mutexUnLock(const OfxMutexHandle mutex) {
  {
    std::lock_guard<std::mutex> l(mutexesMutex_);
    if (!mutexes_.count(mutex)) return kOfxStatErrBadHandle;
  }
  reinterpret_cast<std::recursive_mutex *>(mutex)->unlock();
  return kOfxStatOK;
}

OfxStatus TestHost::mutexTryLock(const OfxMutexHandle mutex) {
  {
    std::lock_guard<std::mutex> l(mutexesMutex_);
    if (!mutexes_.count(mutex)) return kOfxStatErrBadHandle;
  }
  return reinterpret_cast<std::recursive_mutex *>(mutex)->try_lock() ? kOfxStatOK : kOfxStatFailed;
}

////////////////////////////////////////////////////////////////////////////////
// effect instance

Effect::Effect(OFX::Host::ImageEffect::ImageEffectPlugin *plugin, OFX::Host::ImageEffect::Descriptor &desc,
               const std::string &context, bool interactive)
    : OFX::Host::ImageEffect::Instance(plugin, desc, context, interactive) {
  time = gHost->source.spec().first;
}

OFX::Host::ImageEffect::ClipInstance *Effect::newClipInstance(OFX::Host::ImageEffect::Instance *,
                                                              OFX::Host::ImageEffect::ClipDescriptor *descriptor,
                                                              int) {
  // every mandatory input is wired to the source; optional inputs (masks) stay unconnected
  bool connected = descriptor->isOutput() || !descriptor->isOptional();
  return new Clip(this, descriptor, connected);
}

const std::string &Effect::getDefaultOutputFielding() const {
  static const std::string v(kOfxImageFieldNone);
  return v;
}

OfxStatus Effect::vmessage(const char *type, const char *id, const char *format, va_list args) {
  return messageEvent("instance", type, id, vformat(format, args), false);
}

OfxStatus Effect::setPersistentMessage(const char *type, const char *id, const char *format, va_list args) {
  std::string text = vformat(format, args);
  {
    std::lock_guard<std::mutex> l(persistentMutex);
    persistent = Json::object().set("type", type ? type : "").set("id", id ? id : "").set("text", text);
  }
  return messageEvent("instance", type, id, text, true);
}

OfxStatus Effect::clearPersistentMessage() {
  {
    std::lock_guard<std::mutex> l(persistentMutex);
    persistent = Json();
  }
  emitEvent("message_cleared", Json::object().set("from", "instance"));
  return kOfxStatOK;
}

void Effect::getProjectSize(double &xSize, double &ySize) const {
  SourceSpec s = gHost->source.spec();
  xSize = s.width * s.pixelAspect;
  ySize = s.height;
}

void Effect::getProjectOffset(double &xOffset, double &yOffset) const { xOffset = yOffset = 0; }

void Effect::getProjectExtent(double &xSize, double &ySize) const { getProjectSize(xSize, ySize); }

double Effect::getProjectPixelAspectRatio() const { return gHost->source.spec().pixelAspect; }

double Effect::getEffectDuration() const {
  SourceSpec s = gHost->source.spec();
  return double(s.last - s.first + 1);
}

double Effect::getFrameRate() const { return gHost->source.spec().frameRate; }

double Effect::getFrameRecursive() const { return time.load(); }

void Effect::getRenderScaleRecursive(double &x, double &y) const { x = y = 1.0; }

void Effect::paramChangedByPlugin(OFX::Host::Param::Instance *param) {
  Json e = Json::object();
  e.set("param", param->getName()).set("value", paramValue(param)).set("by", "plugin");
  emitEvent("param_changed", e);
  OFX::Host::ImageEffect::Instance::paramChangedByPlugin(param);
}

OfxStatus Effect::editBegin(const std::string &) { return kOfxStatOK; }

OfxStatus Effect::editEnd() { return kOfxStatOK; }

void Effect::progressStart(const std::string &message, const std::string &messageid) {
  emitEvent("progress", Json::object().set("what", "start").set("message", message).set("id", messageid));
}

void Effect::progressEnd() { emitEvent("progress", Json::object().set("what", "end")); }

bool Effect::progressUpdate(double) {
  progressUpdates++;
  return abort() == 0;
}

double Effect::timeLineGetTime() { return time.load(); }

void Effect::timeLineGotoTime(double t) { time = t; }

void Effect::timeLineGetBounds(double &t1, double &t2) {
  SourceSpec s = gHost->source.spec();
  t1 = s.first;
  t2 = s.last;
}

int Effect::abort() {
  if (gHost->abortAll.load()) return 1;
  RenderJob *job = tCurrentJob;
  return job && job->abort.load() ? 1 : 0;
}

////////////////////////////////////////////////////////////////////////////////
// clips

Clip::Clip(Effect *effect, OFX::Host::ImageEffect::ClipDescriptor *desc, bool connected)
    : OFX::Host::ImageEffect::ClipInstance(effect, *desc), effect_(effect), connected_(connected) {}

const std::string &Clip::getUnmappedBitDepth() const {
  static const std::string names[3] = {kOfxBitDepthByte, kOfxBitDepthShort, kOfxBitDepthFloat};
  static const std::string none = kOfxBitDepthNone;
  if (!connected_) return none;
  Depth d = gHost->source.spec().depth;
  return names[d == Depth::Byte ? 0 : d == Depth::Short ? 1 : 2];
}

const std::string &Clip::getUnmappedComponents() const {
  static const std::string rgba(kOfxImageComponentRGBA), none(kOfxImageComponentNone);
  return connected_ ? rgba : none;
}

const std::string &Clip::getPremult() const {
  static const std::string pre(kOfxImagePreMultiplied), unpre(kOfxImageUnPreMultiplied);
  return gHost->source.spec().premultiplied ? pre : unpre;
}

double Clip::getAspectRatio() const { return gHost->source.spec().pixelAspect; }

double Clip::getFrameRate() const { return gHost->source.spec().frameRate; }

void Clip::getFrameRange(double &startFrame, double &endFrame) const {
  SourceSpec s = gHost->source.spec();
  startFrame = s.first;
  endFrame = s.last;
}

const std::string &Clip::getFieldOrder() const {
  static const std::string v(kOfxImageFieldNone);
  return v;
}

bool Clip::getConnected() const { return connected_; }

double Clip::getUnmappedFrameRate() const { return getFrameRate(); }

void Clip::getUnmappedFrameRange(double &a, double &b) const { getFrameRange(a, b); }

bool Clip::getContinuousSamples() const { return false; }

void Clip::getIntPropertyN(const std::string &name, int *values, int count) const {
  if (count < 1 || !values) throw OFX::Host::Property::Exception(kOfxStatErrValue);
  values[0] = getIntProperty(name, 0);
}

int Clip::channels() const { return getComponents() == kOfxImageComponentAlpha ? 1 : 4; }

Depth Clip::depth() const {
  Depth d = gHost->source.spec().depth;
  depthFromOfxName(getPixelDepth(), d);
  return d;
}

OfxRectD Clip::getRegionOfDefinition(OfxTime) const {
  SourceSpec s = gHost->source.spec();
  OfxRectD r = {0, 0, s.width * s.pixelAspect, double(s.height)};
  if (!connected_) r.x2 = r.y2 = 0;
  return r;
}

OFX::Host::ImageEffect::Image *Clip::getImage(OfxTime time, const OfxRectD *) {
  if (isOutput()) {
    RenderJob *job = jobFor(time);
    if (!job) {
      emitEvent("warning", Json::object().set("text", "output image asked for outside a render (time " +
                                                          std::to_string(time) + ")"));
      return nullptr;
    }
    {
      std::lock_guard<std::mutex> l(job->mutex);
      job->outputFetches++;
    }
    return new OFX::Host::ImageEffect::Image(*this, job->scale.x, job->scale.y, job->data(), job->bounds, job->rod,
                                             job->rowBytes, kOfxImageFieldNone, "output");
  }
  if (!connected_) return nullptr;
  // source frames: any time in the range, from any thread, at the scale of the render(s) in flight
  OfxPointD scale = renderScaleNow();
  double frameTime = std::floor(time + 0.5);
  std::string uid, reason;
  auto pic = gHost->source.picture(int(frameTime), scale.x, scale.y, depth(), channels(), &uid, &reason);
  if (tCurrentJob) {
    std::lock_guard<std::mutex> l(tCurrentJob->mutex);
    tCurrentJob->fetched.push_back(time);
  } else {
    std::lock_guard<std::mutex> l(gHost->fetchMutex);
    gHost->strayFetches.push_back(time);
  }
  if (!pic) {
    emitEvent("warning", Json::object().set("text", "clip " + getName() + ": no image at time " +
                                                        std::to_string(time) + ": " + reason));
    return nullptr;
  }
  OfxRectI bounds = {0, 0, pic->width, pic->height};
  // the image holds a reference to the cached picture for as long as the plugin keeps it
  struct HeldImage : OFX::Host::ImageEffect::Image {
    HeldImage(OFX::Host::ImageEffect::ClipInstance &clip, double sx, double sy, std::shared_ptr<const Picture> p,
              const OfxRectI &b, const std::string &id)
        : OFX::Host::ImageEffect::Image(clip, sx, sy, const_cast<unsigned char *>(p->data.data()), b, b,
                                        p->rowBytes(), kOfxImageFieldNone, id),
          pic(std::move(p)) {}
    std::shared_ptr<const Picture> pic;
  };
  return new HeldImage(*this, scale.x, scale.y, pic, bounds, uid);
}

}  // namespace th
