// The OFX host built on the SDK's HostSupport library: the host description and its suites
// (multithread, message, progress, time line; property, param, memory and image effect come from
// HostSupport), effect instances, clips that serve the test source with temporal access from any
// thread, and value-holding parameters.
#pragma once

#include <atomic>
#include <cstdarg>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

// HostSupport's headers depend on each other in this order
#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxPixels.h"
#include "ofxhBinary.h"
#include "ofxhPropertySuite.h"
#include "ofxhClip.h"
#include "ofxhParam.h"
#include "ofxhMemory.h"
#include "ofxhImageEffect.h"
#include "ofxhPluginAPICache.h"
#include "ofxhPluginCache.h"
#include "ofxhHost.h"
#include "ofxhImageEffectAPI.h"

#include "json.hpp"
#include "pixels.hpp"
#include "source.hpp"

namespace th {

// Writes protocol lines (answers and events) to the protocol stream, one whole line at a time,
// from any thread.
void emitLine(const Json &j);
void emitEvent(const char *event, Json fields);

std::string statusName(OfxStatus st);

// One frame being rendered: the output buffer and what the plugin did while rendering it.
struct RenderJob {
  double time = 0;
  OfxPointD scale{1, 1};
  OfxRectI window{0, 0, 0, 0};
  OfxRectI bounds{0, 0, 0, 0};  // of the output image
  OfxRectI rod{0, 0, 0, 0};     // pixel RoD at the render scale
  Depth depth = Depth::Byte;
  int channels = 4;
  int rowBytes = 0;
  static const size_t kGuard = 256;  // bytes before and after the image, checked after the render
  std::vector<unsigned char> buffer;
  unsigned char *data() { return buffer.data() + kGuard; }
  std::atomic<int> abort{0};
  std::mutex mutex;  // guards the vectors below
  std::vector<double> fetched;  // source frames the plugin fetched on this job's thread
  int outputFetches = 0;
};

// The job the calling thread is rendering, when it is a host render thread.
extern thread_local RenderJob *tCurrentJob;

class Effect;

class TestHost : public OFX::Host::ImageEffect::Host {
 public:
  TestHost(const std::string &name, const std::string &label);

  OFX::Host::ImageEffect::Instance *newInstance(void *clientData, OFX::Host::ImageEffect::ImageEffectPlugin *plugin,
                                                OFX::Host::ImageEffect::Descriptor &desc,
                                                const std::string &context) override;
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(OFX::Host::ImageEffect::ImageEffectPlugin *plugin) override;
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(const OFX::Host::ImageEffect::Descriptor &rootContext,
                                                     OFX::Host::ImageEffect::ImageEffectPlugin *plug) override;
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(const std::string &bundlePath,
                                                     OFX::Host::ImageEffect::ImageEffectPlugin *plug) override;

  OfxStatus vmessage(const char *type, const char *id, const char *format, va_list args) override;
  OfxStatus setPersistentMessage(const char *type, const char *id, const char *format, va_list args) override;
  OfxStatus clearPersistentMessage() override;

  OfxStatus multiThread(OfxThreadFunctionV1 func, unsigned int nThreads, void *customArg) override;
  OfxStatus multiThreadNumCPUS(unsigned int *nCPUs) const override;
  OfxStatus multiThreadIndex(unsigned int *threadIndex) const override;
  int multiThreadIsSpawnedThread() const override;
  OfxStatus mutexCreate(OfxMutexHandle *mutex, int lockCount) override;
  OfxStatus mutexDestroy(const OfxMutexHandle mutex) override;
  OfxStatus mutexLock(const OfxMutexHandle mutex) override;
  OfxStatus mutexUnLock(const OfxMutexHandle mutex) override;
  OfxStatus mutexTryLock(const OfxMutexHandle mutex) override;

  // settings and state shared with the instance
  Source source;
  unsigned cpus = 0;                         // multiThreadNumCPUs (0: the machine's count)
  OfxStatus questionReply = kOfxStatReplyYes;
  std::atomic<long> multiThreadCalls{0};
  std::atomic<long> spawnedThreads{0};
  std::mutex fetchMutex;
  std::vector<double> strayFetches;  // source fetches from threads that are not host render threads
  std::atomic<int> abortAll{0};

 private:
  std::mutex mutexesMutex_;
  std::set<OfxMutexHandle> mutexes_;
};

extern TestHost *gHost;

class Effect : public OFX::Host::ImageEffect::Instance {
 public:
  Effect(OFX::Host::ImageEffect::ImageEffectPlugin *plugin, OFX::Host::ImageEffect::Descriptor &desc,
         const std::string &context, bool interactive);

  OFX::Host::ImageEffect::ClipInstance *newClipInstance(OFX::Host::ImageEffect::Instance *plugin,
                                                        OFX::Host::ImageEffect::ClipDescriptor *descriptor,
                                                        int index) override;
  const std::string &getDefaultOutputFielding() const override;
  OfxStatus vmessage(const char *type, const char *id, const char *format, va_list args) override;
  OfxStatus setPersistentMessage(const char *type, const char *id, const char *format, va_list args) override;
  OfxStatus clearPersistentMessage() override;
  void getProjectSize(double &xSize, double &ySize) const override;
  void getProjectOffset(double &xOffset, double &yOffset) const override;
  void getProjectExtent(double &xSize, double &ySize) const override;
  double getProjectPixelAspectRatio() const override;
  double getEffectDuration() const override;
  double getFrameRate() const override;
  double getFrameRecursive() const override;
  void getRenderScaleRecursive(double &x, double &y) const override;
  OFX::Host::Param::Instance *newParam(const std::string &name, OFX::Host::Param::Descriptor &descriptor) override;
  OfxStatus editBegin(const std::string &name) override;
  OfxStatus editEnd() override;
  void progressStart(const std::string &message, const std::string &messageid) override;
  void progressEnd() override;
  bool progressUpdate(double t) override;
  double timeLineGetTime() override;
  void timeLineGotoTime(double t) override;
  void timeLineGetBounds(double &t1, double &t2) override;
  int abort() override;

  void paramChangedByPlugin(OFX::Host::Param::Instance *param) override;

  void markClipPrefsDirty() { _clipPrefsDirty = true; }
  bool created() const { return _created; }

  std::atomic<double> time{0};
  std::atomic<long> progressUpdates{0};
  std::mutex persistentMutex;
  Json persistent;  // the persistent message now shown, or null
};

class Clip : public OFX::Host::ImageEffect::ClipInstance {
 public:
  Clip(Effect *effect, OFX::Host::ImageEffect::ClipDescriptor *desc, bool connected);

  const std::string &getUnmappedBitDepth() const override;
  const std::string &getUnmappedComponents() const override;
  const std::string &getPremult() const override;
  double getAspectRatio() const override;
  double getFrameRate() const override;
  void getFrameRange(double &startFrame, double &endFrame) const override;
  const std::string &getFieldOrder() const override;
  bool getConnected() const override;
  double getUnmappedFrameRate() const override;
  void getUnmappedFrameRange(double &unmappedStartFrame, double &unmappedEndFrame) const override;
  bool getContinuousSamples() const override;
  OFX::Host::ImageEffect::Image *getImage(OfxTime time, const OfxRectD *optionalBounds) override;
  OfxRectD getRegionOfDefinition(OfxTime time) const override;
  // HostSupport's version refuses every count but 0; propGetIntN(..., 1, ...) is legal
  void getIntPropertyN(const std::string &name, int *values, int count) const override;

  int channels() const;
  Depth depth() const;  // mapped pixel depth (after clip preferences)

 private:
  Effect *effect_;
  bool connected_;
};

// the jobs being rendered now, for output fetches from threads the host did not start
void registerJob(RenderJob *job);
void unregisterJob(RenderJob *job);

// Parameter values as JSON, and setting them from JSON (throws with a message on bad values)
Json paramValue(OFX::Host::Param::Instance *p);
OfxStatus setParamValue(OFX::Host::Param::Instance *p, const Json &value);
Json describeParam(const OFX::Host::Param::Base &p, bool withValue);

// true while the host (not the plugin) is setting a value
extern thread_local bool tHostIsSetting;

}  // namespace th
