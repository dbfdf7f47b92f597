// ofx-testhost: a command-driven OpenFX host for tests, built on the SDK's HostSupport library.
//
//   ofx-testhost --plugin-path DIR[:DIR] [--std-paths] [--cache FILE] [--host-name NAME]
//                [--cpus N] [--answer-questions yes|no]
//
// Reads one JSON command per line on stdin and writes one JSON answer per command on stdout;
// events (messages the plugin posts, progress, warnings) are JSON lines with an "event" key,
// written before the answer of the command during which they happened. Anything else the
// plugin or the SDK prints goes to stderr. See clients/ofx/testhost/README.md for the protocol.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "host.hpp"

namespace th {

namespace {
int gProtoFd = -1;
FILE *gProto = nullptr;
std::mutex gProtoMutex;

void crashHandler(int sig) {
  // async-signal-safe: a fixed line, then die of the same signal so the exit status tells
  char line[96];
  const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT" : sig == SIGBUS ? "SIGBUS"
                   : sig == SIGFPE  ? "SIGFPE"  : sig == SIGILL  ? "SIGILL"  : "signal";
  int n = 0;
  const char *a = "{\"event\":\"crash\",\"signal\":\"";
  while (a[n]) line[n] = a[n], n++;
  for (int i = 0; name[i]; i++) line[n++] = name[i];
  line[n++] = '"';
  line[n++] = '}';
  line[n++] = '\n';
  if (gProtoFd >= 0) {
    ssize_t w = write(gProtoFd, line, size_t(n));
    (void)w;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

Json rectJson(const OfxRectI &r) { return Json(Json::Array{r.x1, r.y1, r.x2, r.y2}); }

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string frameName(double t) {
  char buf[32];
  if (std::floor(t) == t) std::snprintf(buf, sizeof buf, "%06lld", (long long)t);
  else std::snprintf(buf, sizeof buf, "%010.3f", t);
  return buf;
}

struct Error : std::runtime_error {
  OfxStatus status;
  explicit Error(const std::string &what, OfxStatus st = kOfxStatFailed) : std::runtime_error(what), status(st) {}
};

bool okStatus(OfxStatus st) { return st == kOfxStatOK || st == kOfxStatReplyDefault; }

// The plugin cache with the search path this host was given, in place of the standard one.
class SearchPathCache : public OFX::Host::PluginCache {
 public:
  static SearchPathCache *install(const std::vector<std::string> &dirs, bool stdPaths) {
    auto *c = new SearchPathCache;
    std::list<std::string> standard = c->_pluginPath;  // OFX_PLUGIN_PATH, then the OS folder
    c->_pluginPath.clear();
    for (auto &d : dirs) c->_pluginPath.push_back(d);
    for (auto &d : standard) {
      bool isOsFolder = d == "/usr/OFX/Plugins" || d == "/Library/OFX/Plugins" ||
                        d.find("Common Files\\OFX\\Plugins") != std::string::npos;
      if (!isOsFolder || stdPaths) c->_pluginPath.push_back(d);
    }
    gPluginCachePtr = c;
    return c;
  }
  const std::list<std::string> &paths() const { return _pluginPath; }
};

}  // namespace

void emitLine(const Json &j) {
  std::string s = j.dump();
  s += '\n';
  std::lock_guard<std::mutex> l(gProtoMutex);
  if (!gProto) return;
  std::fwrite(s.data(), 1, s.size(), gProto);
  std::fflush(gProto);
}

void emitEvent(const char *event, Json fields) {
  Json e = Json::object();
  e.set("event", event);
  if (fields.isObject())
    for (auto &kv : fields.asObject()) e.set(kv.first, kv.second);
  emitLine(e);
}

class Session {
 public:
  Session(const std::string &hostName, OFX::Host::PluginCache *pc) : host_(hostName, "LiveEdit OFX test host"), cache_(host_) {
    cache_.registerInCache(*pc);
    pc_ = pc;
  }

  void scan(const std::string &cacheFile) {
    pc_->setCacheVersion("liveedit-ofx-testhost-1");
    if (!cacheFile.empty()) {
      std::ifstream in(cacheFile);
      if (in) pc_->readCache(in);
    }
    pc_->scanPluginFiles();
    if (!cacheFile.empty() && pc_->dirty()) {
      std::ofstream out(cacheFile);
      pc_->writePluginCache(out);
    }
  }

  TestHost &host() { return host_; }
  bool hung() const { return hung_; }

  Json dispatch(const std::string &cmd, const Json &c) {
    if (hung_ && cmd != "quit" && cmd != "status")
      throw Error("a render thread is still stuck inside the plugin after a timeout; start a new host");
    if (cmd == "list") return list(c);
    if (cmd == "create") return create(c);
    if (cmd == "destroy") return destroy();
    if (cmd == "set") return set(c);
    if (cmd == "get") return get(c);
    if (cmd == "source") return source(c);
    if (cmd == "change_frame") return changeFrame(c);
    if (cmd == "render") return render(c);
    if (cmd == "dump_source") return dumpSource(c);
    if (cmd == "goto") return gotoTime(c);
    if (cmd == "status") return status();
    if (cmd == "purge_caches") return simpleAction(effect().purgeCachesAction());
    if (cmd == "sync_private_data") return simpleAction(effect().syncPrivateDataAction());
    throw Error("unknown command \"" + cmd + "\"");
  }

  // Destroys the instance (kOfxActionDestroyInstance) unless a stuck render still uses it.
  void shutdown() {
    if (!hung_) effect_.reset();
    else effect_.release();  // NOLINT: deliberately leaked, a plugin thread still runs in it
  }

 private:
  TestHost host_;
  OFX::Host::ImageEffect::PluginCache cache_;
  OFX::Host::PluginCache *pc_ = nullptr;
  std::unique_ptr<Effect> effect_;
  bool hung_ = false;
  std::mutex serialMutex_;  // one render at a time for plugins that are not fully thread-safe

  Effect &effect() {
    if (!effect_) throw Error("no instance: send create first");
    return *effect_;
  }

  Json simpleAction(OfxStatus st) {
    Json a = Json::object();
    a.set("ok", okStatus(st)).set("status", statusName(st)).set("code", int(st));
    return a;
  }

  static Json strings(const OFX::Host::Property::Set &props, const char *name) {
    Json a = Json::array();
    if (!props.fetchProperty(name)) return a;
    int n = props.getDimension(name);
    for (int i = 0; i < n; i++) a.push(props.getStringProperty(name, i));
    return a;
  }

  Json describeContext(OFX::Host::ImageEffect::ImageEffectPlugin *p, const std::string &ctx) {
    Json j = Json::object();
    OFX::Host::ImageEffect::Descriptor *d = p->getContext(ctx);
    if (!d) {
      j.set("error", "kOfxImageEffectActionDescribeInContext failed");
      return j;
    }
    Json clips = Json::array();
    for (auto *cd : d->getClipsByOrder()) {
      Json cj = Json::object();
      cj.set("name", cd->getName()).set("optional", cd->isOptional()).set("mask", cd->isMask());
      cj.set("temporal_access", cd->temporalAccess()).set("supports_tiles", cd->supportsTiles());
      cj.set("components", strings(cd->getProps(), kOfxImageEffectPropSupportedComponents));
      clips.push(cj);
    }
    j.set("clips", clips);
    Json params = Json::array();
    for (auto *pd : d->getParamList()) params.push(describeParam(*pd, false));
    j.set("params", params);
    return j;
  }

  Json list(const Json &) {
    Json plugins = Json::array();
    for (auto *p : cache_.getPlugins()) {
      Json j = Json::object();
      j.set("identifier", p->getIdentifier());
      j.set("version", Json(Json::Array{p->getVersionMajor(), p->getVersionMinor()}));
      j.set("api_version", p->getApiVersion());
      j.set("bundle", p->getBinary()->getBundlePath());
      j.set("binary", p->getBinary()->getFilePath());
      OFX::Host::ImageEffect::Descriptor &d = p->getDescriptor();
      j.set("label", d.getLabel());
      j.set("grouping", d.getPluginGrouping());
      Json contexts = Json::array();
      for (auto &c : p->getContexts()) contexts.push(c);
      j.set("contexts", contexts);
      j.set("depths", strings(d.getProps(), kOfxImageEffectPropSupportedPixelDepths));
      j.set("temporal_access", d.temporalAccess());
      j.set("render_thread_safety", d.getRenderThreadSafety());
      j.set("host_frame_threading", d.getHostFrameThreading());
      j.set("supports_tiles", d.supportsTiles());
      j.set("supports_multi_resolution", d.supportsMultiResolution());
      j.set("supports_multiple_clip_depths", d.supportsMultipleClipDepths());
      if (!p->getPluginHandle()) {
        j.set("error", "kOfxActionLoad or kOfxActionDescribe failed");
      } else {
        Json described = Json::object();
        for (auto &c : p->getContexts()) described.set(c, describeContext(p, c));
        j.set("described", described);
        // the parameters of the first context (filter first): what most callers want
        std::string first = p->getContexts().count(kOfxImageEffectContextFilter) ? kOfxImageEffectContextFilter
                             : p->getContexts().empty() ? "" : *p->getContexts().begin();
        if (!first.empty()) {
          const Json *ctx = described.find(first);
          if (ctx && ctx->find("params")) j.set("params", *ctx->find("params"));
        }
      }
      plugins.push(j);
    }
    Json a = Json::object();
    a.set("ok", true).set("plugins", plugins);
    Json paths = Json::array();
    for (auto &s : static_cast<SearchPathCache *>(pc_)->paths()) paths.push(s);
    a.set("search_path", paths);
    return a;
  }

  Json instanceJson() {
    Effect &e = effect();
    Json j = Json::object();
    j.set("plugin", e.getPlugin()->getIdentifier()).set("context", e.getContext());
    j.set("output_premultiplication", e.getOutputPreMultiplication());
    j.set("frame_varying", e.isFrameVarying());
    Json clips = Json::array();
    for (int i = 0; i < e.getNClips(); i++) {
      auto *c = dynamic_cast<Clip *>(e.getNthClip(i));
      if (!c) continue;
      Json cj = Json::object();
      cj.set("name", c->getName()).set("output", c->isOutput()).set("connected", c->getConnected());
      cj.set("depth", c->getPixelDepth()).set("components", c->getComponents());
      clips.push(cj);
    }
    j.set("clips", clips);
    Json params = Json::array();
    for (auto *p : e.getParamList()) params.push(describeParam(*p, true));
    j.set("params", params);
    return j;
  }

  Json create(const Json &c) {
    std::string id = c.str("plugin");
    if (id.empty()) throw Error("create needs \"plugin\" (an identifier from list)");
    int vmaj = int(c.integer("version_major", -1)), vmin = int(c.integer("version_minor", -1));
    OFX::Host::ImageEffect::ImageEffectPlugin *p = cache_.getPluginById(id, vmaj, vmin);
    if (!p) throw Error("no plugin \"" + id + "\" on the search path");
    if (!p->getPluginHandle()) throw Error("plugin " + id + " failed to load (kOfxActionLoad or kOfxActionDescribe)");
    std::string ctx = c.str("context", "");
    if (ctx == "filter") ctx = kOfxImageEffectContextFilter;
    else if (ctx == "general") ctx = kOfxImageEffectContextGeneral;
    if (ctx.empty())
      ctx = p->getContexts().count(kOfxImageEffectContextFilter) ? kOfxImageEffectContextFilter : kOfxImageEffectContextGeneral;
    if (!p->getContexts().count(ctx)) throw Error("plugin " + id + " does not support the context " + ctx);
    effect_.reset();  // one instance at a time
    bool interactive = c.boolean("interactive", false);
    std::unique_ptr<OFX::Host::ImageEffect::Instance> inst(p->createInstance(ctx, &interactive));
    if (!inst) throw Error("kOfxImageEffectActionDescribeInContext failed for " + ctx);
    Effect *e = dynamic_cast<Effect *>(inst.get());
    if (!e) throw Error("internal: instance of the wrong class");
    // saved values are set before kOfxActionCreateInstance, as a host loading a project does
    if (const Json *params = c.find("params")) {
      for (auto &kv : params->asObject()) {
        auto *pi = e->getParams().count(kv.first) ? e->getParams().at(kv.first) : nullptr;
        if (!pi) throw Error("no parameter \"" + kv.first + "\"");
        tHostIsSetting = true;
        OfxStatus st = setParamValue(pi, kv.second);
        tHostIsSetting = false;
        if (st != kOfxStatOK) throw Error("cannot set " + kv.first, st);
      }
    }
    OfxStatus st = e->createInstanceAction();
    if (!okStatus(st)) throw Error("kOfxActionCreateInstance failed", st);
    inst.release();
    effect_.reset(e);
    if (!e->getClipPreferences()) throw Error("kOfxImageEffectActionGetClipPreferences failed");
    Json a = Json::object();
    a.set("ok", true).set("status", statusName(st)).set("instance", instanceJson());
    return a;
  }

  Json destroy() {
    effect_.reset();
    return Json::object().set("ok", true);
  }

  OFX::Host::Param::Instance *param(const std::string &name) {
    auto &params = effect().getParams();
    auto it = params.find(name);
    if (it == params.end()) throw Error("no parameter \"" + name + "\"");
    return it->second;
  }

  OfxStatus changed(const std::string &paramName) {
    Effect &e = effect();
    OfxPointD scale{1, 1};
    OfxStatus s1 = e.beginInstanceChangedAction(kOfxChangeUserEdited);
    OfxStatus st = e.paramInstanceChangedAction(paramName, kOfxChangeUserEdited, e.time.load(), scale);
    OfxStatus s2 = e.endInstanceChangedAction(kOfxChangeUserEdited);
    if (!okStatus(s1)) return s1;
    if (!okStatus(s2)) return s2;
    return st;
  }

  Json set(const Json &c) {
    std::vector<std::pair<std::string, Json>> values;
    if (c.has("param")) {
      if (!c.find("value")) throw Error("set needs \"value\"");
      values.emplace_back(c.str("param"), *c.find("value"));
    }
    if (const Json *many = c.find("values"))
      for (auto &kv : many->asObject()) values.emplace_back(kv.first, kv.second);
    if (values.empty()) throw Error("set needs \"param\" and \"value\", or \"values\"");
    Json results = Json::array();
    bool allOk = true;
    for (auto &kv : values) {
      auto *p = param(kv.first);
      tHostIsSetting = true;
      OfxStatus st;
      try {
        st = setParamValue(p, kv.second);
      } catch (...) {
        tHostIsSetting = false;
        throw;
      }
      tHostIsSetting = false;
      if (st != kOfxStatOK) throw Error("cannot set " + kv.first, st);
      OfxStatus ch = changed(kv.first);
      allOk = allOk && okStatus(ch);
      results.push(Json::object()
                       .set("param", kv.first)
                       .set("value", paramValue(p))
                       .set("instance_changed", statusName(ch))
                       .set("code", int(ch)));
    }
    effect().runGetClipPrefsConditionally();
    Json a = Json::object();
    a.set("ok", allOk).set("results", results);
    if (values.size() == 1) {
      a.set("value", results[0].find("value") ? *results[0].find("value") : Json());
      a.set("status", *results[0].find("instance_changed"));
      a.set("code", *results[0].find("code"));
    }
    return a;
  }

  Json get(const Json &c) {
    Json a = Json::object();
    a.set("ok", true);
    if (c.has("param")) {
      auto *p = param(c.str("param"));
      a.set("value", paramValue(p)).set("param", describeParam(*p, true));
    } else {
      Json values = Json::object();
      for (auto *p : effect().getParamList()) values.set(p->getName(), paramValue(p));
      a.set("values", values);
    }
    return a;
  }

  void notifySourceChanged(double time) {
    if (!effect_) return;
    Effect &e = *effect_;
    OfxPointD scale{1, 1};
    e.beginInstanceChangedAction(kOfxChangeUserEdited);
    for (int i = 0; i < e.getNClips(); i++) {
      auto *clip = e.getNthClip(i);
      if (!clip->isOutput() && clip->getConnected())
        e.clipInstanceChangedAction(clip->getName(), kOfxChangeUserEdited, time, scale);
    }
    e.endInstanceChangedAction(kOfxChangeUserEdited);
  }

  Json source(const Json &c) {
    SourceSpec spec = SourceSpec::fromJson(c);
    host_.source.configure(spec);
    if (effect_) {
      notifySourceChanged(effect_->time.load());
      effect_->markClipPrefsDirty();
      effect_->getClipPreferences();
    }
    Json a = Json::object();
    a.set("ok", true).set("source", spec.toJson());
    if (effect_) a.set("instance", instanceJson());
    return a;
  }

  Json changeFrame(const Json &c) {
    int frame = int(c.integer("frame", 0));
    if (!c.find("frame")) throw Error("change_frame needs \"frame\"");
    bool hasSeed = c.has("seed");
    host_.source.changeFrame(frame, uint64_t(c.integer("seed", 0)), hasSeed);
    if (c.boolean("notify", true)) notifySourceChanged(frame);
    Json a = Json::object();
    a.set("ok", true).set("frame", frame).set("uid", host_.source.uid(frame));
    return a;
  }

  Json gotoTime(const Json &c) {
    effect().time = c.num("frame", effect().time.load());
    return Json::object().set("ok", true).set("time", effect().time.load());
  }

  Json status() {
    Json a = Json::object();
    a.set("ok", true).set("hung", hung_).set("source", host_.source.spec().toJson());
    a.set("multithread_calls", (long long)host_.multiThreadCalls.load());
    a.set("spawned_threads", (long long)host_.spawnedThreads.load());
    if (effect_) {
      a.set("instance", instanceJson());
      std::lock_guard<std::mutex> l(effect_->persistentMutex);
      a.set("persistent_message", effect_->persistent);
      a.set("progress_updates", (long long)effect_->progressUpdates.load());
      a.set("time", effect_->time.load());
    }
    return a;
  }

  static void writePicture(const std::string &dir, const std::string &stem, const unsigned char *data, int rowBytes,
                           const OfxRectI &bounds, Depth depth, int channels, Json &meta, Json &answer) {
    std::filesystem::create_directories(dir);
    std::string raw = dir + "/" + stem + (channels == 4 ? ".rgba" : ".a");
    std::ofstream f(raw, std::ios::binary);
    int w = bounds.x2 - bounds.x1, h = bounds.y2 - bounds.y1;
    size_t tight = size_t(w) * size_t(channels) * size_t(depth);
    for (int y = 0; y < h; y++) f.write(reinterpret_cast<const char *>(data + size_t(y) * rowBytes), std::streamsize(tight));
    if (!f) throw Error("cannot write " + raw);
    meta.set("width", w).set("height", h).set("depth", depthShortName(depth));
    meta.set("components", channels == 4 ? "RGBA" : "A").set("bounds", rectJson(bounds));
    meta.set("row_bytes", (long long)tight).set("host_row_bytes", rowBytes).set("rows", "bottom-up");
    std::ofstream m(dir + "/" + stem + ".json");
    m << meta.dump() << "\n";
    answer.set("file", raw);
  }

  Json dumpSource(const Json &c) {
    double t = c.num("frame", 0);
    OfxPointD scale = renderScale(c);
    Depth depth = host_.source.spec().depth;
    int channels = 4;
    if (effect_) {
      for (int i = 0; i < effect_->getNClips(); i++) {
        auto *clip = dynamic_cast<Clip *>(effect_->getNthClip(i));
        if (clip && !clip->isOutput() && clip->getConnected()) {
          depth = clip->depth();
          channels = clip->channels();
          break;
        }
      }
    }
    if (c.has("depth")) depth = depthFromName(c.str("depth"));
    std::string uid, reason;
    auto pic = host_.source.picture(int(std::floor(t + 0.5)), scale.x, scale.y, depth, channels, &uid, &reason);
    if (!pic) throw Error(reason);
    Json a = Json::object();
    a.set("ok", true).set("uid", uid);
    OfxRectI b{0, 0, pic->width, pic->height};
    a.set("checksum", hex64(fnv1a(pic->data.data(), pic->bytes())));
    std::string out = c.str("out");
    if (!out.empty()) {
      Json meta = Json::object();
      meta.set("frame", t).set("uid", uid).set("render_scale", Json(Json::Array{scale.x, scale.y}));
      writePicture(out, "source_" + frameName(t), pic->data.data(), pic->rowBytes(), b, depth, channels, meta, a);
    }
    a.set("bounds", rectJson(b)).set("depth", depthShortName(depth));
    return a;
  }

  static OfxPointD renderScale(const Json &c) {
    OfxPointD s{1, 1};
    if (const Json *rs = c.find("render_scale")) {
      if (rs->isNumber()) s.x = s.y = rs->asDouble();
      else if (rs->isArray() && rs->size() == 2) s.x = (*rs)[0].asDouble(), s.y = (*rs)[1].asDouble();
      else if (!rs->isNull()) throw Error("render_scale is a number or [x, y]");
    }
    if (!(s.x > 0 && s.x <= 1 && s.y > 0 && s.y <= 1)) throw Error("render_scale must be in (0, 1]");
    return s;
  }

  // a frame rendered by one host thread: what it did and how it went
  struct Outcome {
    bool ok = false;
    OfxStatus status = kOfxStatFailed;
    std::string error;
    double ms = 0;        // the whole frame on the host's side: every action, allocation, checks
    double renderMs = 0;  // inside kOfxImageEffectActionRender alone (or the identity copy)
    std::string identityClip;
    double identityTime = 0;
    std::vector<double> framesNeeded;
    bool overrun = false;
  };

  void copyIdentity(RenderJob &job, const std::string &clipName, double time) {
    auto *clip = dynamic_cast<Clip *>(effect().getClip(clipName));
    if (!clip) throw Error("isIdentity named an unknown clip " + clipName);
    std::string uid, reason;
    auto pic = host_.source.picture(int(std::floor(time + 0.5)), job.scale.x, job.scale.y, job.depth, job.channels, &uid,
                                    &reason);
    if (!pic) throw Error("identity clip has no image: " + reason);
    const size_t px = size_t(job.channels) * size_t(job.depth);
    for (int y = job.window.y1; y < job.window.y2; y++)
      for (int x = job.window.x1; x < job.window.x2; x++) {
        unsigned char *out = job.data() + size_t(y - job.bounds.y1) * job.rowBytes + size_t(x - job.bounds.x1) * px;
        if (x >= 0 && y >= 0 && x < pic->width && y < pic->height)
          std::memcpy(out, pic->data.data() + size_t(y) * pic->rowBytes() + size_t(x) * px, px);
        else
          std::memset(out, 0, px);
      }
  }

  void renderOne(RenderJob &job, Outcome &o, const Json &c, bool sequential, bool interactive, bool draft,
                 std::mutex *serial, std::atomic<int> &inRender, std::atomic<int> &maxInRender) {
    Effect &e = effect();
    tCurrentJob = &job;
    registerJob(&job);
    std::unique_lock<std::mutex> serialLock;
    if (serial) serialLock = std::unique_lock<std::mutex>(*serial);
    auto t0 = std::chrono::steady_clock::now();
    bool begun = false;
    try {
      if (!sequential) {
        OfxStatus st = e.beginRenderAction(job.time, job.time, 1, interactive, job.scale, false, interactive);
        if (!okStatus(st)) throw Error("kOfxImageEffectActionBeginSequenceRender failed", st);
        begun = true;
      }
      // the output's region of definition, in pixels at the render scale
      OfxRectD rod;
      OfxStatus st = e.getRegionOfDefinitionAction(job.time, job.scale, rod);
      if (!okStatus(st)) throw Error("kOfxImageEffectActionGetRegionOfDefinition failed", st);
      double par = e.getProjectPixelAspectRatio();
      job.rod = {int(std::floor(rod.x1 * job.scale.x / par + 1e-9)), int(std::floor(rod.y1 * job.scale.y + 1e-9)),
                 int(std::ceil(rod.x2 * job.scale.x / par - 1e-9)), int(std::ceil(rod.y2 * job.scale.y - 1e-9))};
      if (const Json *w = c.find("window"); w && !w->isNull()) {
        if (!w->isArray() || w->size() != 4) throw Error("window is [x1, y1, x2, y2]");
        job.window = {int((*w)[0].asInt()), int((*w)[1].asInt()), int((*w)[2].asInt()), int((*w)[3].asInt())};
      } else {
        job.window = job.rod;
      }
      if (job.window.x2 <= job.window.x1 || job.window.y2 <= job.window.y1) throw Error("empty render window");
      job.bounds = c.str("output_bounds", "window") == "rod" ? job.rod : job.window;
      if (job.window.x1 < job.bounds.x1 || job.window.y1 < job.bounds.y1 || job.window.x2 > job.bounds.x2 ||
          job.window.y2 > job.bounds.y2)
        throw Error("the render window is outside the output image's bounds");
      int w = job.bounds.x2 - job.bounds.x1, h = job.bounds.y2 - job.bounds.y1;
      job.rowBytes = w * job.channels * int(job.depth);
      job.buffer.assign(RenderJob::kGuard * 2 + size_t(job.rowBytes) * size_t(h), 0xA5);
      // regions of interest and frames needed: asked as a host does before rendering
      OfxRectD roi = {job.window.x1 * par / job.scale.x, job.window.y1 / job.scale.y,
                      job.window.x2 * par / job.scale.x, job.window.y2 / job.scale.y};
      std::map<OFX::Host::ImageEffect::ClipInstance *, OfxRectD> rois;
      e.getRegionOfInterestAction(job.time, job.scale, roi, rois);
      OFX::Host::ImageEffect::RangeMap ranges;
      if (okStatus(e.getFrameNeededAction(job.time, ranges)))
        for (auto &kv : ranges)
          if (!kv.first->isOutput())
            for (auto &r : kv.second) o.framesNeeded.push_back(r.min), o.framesNeeded.push_back(r.max);
      std::string idClip;
      double idTime = job.time;
      if (c.boolean("identity", true) &&
          e.isIdentityAction(idTime, kOfxImageFieldNone, job.window, job.scale, idClip) == kOfxStatOK &&
          !idClip.empty()) {
        auto r0 = std::chrono::steady_clock::now();
        copyIdentity(job, idClip, idTime);
        o.renderMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
        o.identityClip = idClip;
        o.identityTime = idTime;
        o.status = kOfxStatOK;
      } else {
        int now = ++inRender;
        int prev = maxInRender.load();
        while (now > prev && !maxInRender.compare_exchange_weak(prev, now)) {
        }
        auto r0 = std::chrono::steady_clock::now();
        o.status = e.renderAction(job.time, kOfxImageFieldNone, job.window, job.scale, sequential, interactive, draft);
        o.renderMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
        --inRender;
        if (o.status != kOfxStatOK) {
          o.error = "kOfxImageEffectActionRender returned " + statusName(o.status);
          if (job.abort.load()) o.error += " after the host aborted it (frame timeout)";
        }
      }
      for (size_t i = 0; i < RenderJob::kGuard; i++)
        if (job.buffer[i] != 0xA5 || job.buffer[job.buffer.size() - 1 - i] != 0xA5) o.overrun = true;
      if (o.overrun) o.error = "the plugin wrote outside the output image's memory";
      o.ok = o.status == kOfxStatOK && !o.overrun;
      if (job.abort.load() && o.ok) {
        o.ok = false;
        o.error = "aborted by the host after the frame's timeout";
      }
    } catch (const Error &err) {
      o.ok = false;
      o.status = err.status;
      o.error = err.what();
    } catch (const std::exception &ex) {
      o.ok = false;
      o.error = ex.what();
    }
    if (begun) e.endRenderAction(job.time, job.time, 1, interactive, job.scale, false, interactive);
    o.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    unregisterJob(&job);
    tCurrentJob = nullptr;
  }

  Json render(const Json &c) {
    Effect &e = effect();
    const Json *fj = c.find("frames");
    if (!fj || !fj->isArray() || fj->size() == 0) throw Error("render needs \"frames\": [t, ...]");
    std::vector<double> frames;
    for (auto &f : fj->asArray()) frames.push_back(f.asDouble());
    int threads = int(std::max<long long>(1, c.integer("threads", 1)));
    OfxPointD scale = renderScale(c);
    bool interactive = c.boolean("interactive", false), sequential = c.boolean("sequential", false);
    bool draft = c.boolean("draft", false);
    double timeout = c.num("frame_timeout", 120.0), grace = c.num("abort_grace", 2.0);
    std::string out = c.str("out");
    std::string outputBounds = c.str("output_bounds", "window");
    if (outputBounds != "window" && outputBounds != "rod") throw Error("output_bounds is \"window\" or \"rod\"");

    e.runGetClipPrefsConditionally();
    Clip *outClip = dynamic_cast<Clip *>(e.getClip(kOfxImageEffectOutputClipName));
    if (!outClip) throw Error("the instance has no output clip");
    const std::string safety = e.getDescriptor().getRenderThreadSafety();
    bool concurrent = threads > 1 && (safety == kOfxImageEffectRenderFullySafe || c.boolean("force_concurrent", false));
    // unsafe and instance-safe plugins get one render at a time (one instance here)
    std::mutex *serial = concurrent ? nullptr : &serialMutex_;

    Json answer = Json::object();
    answer.set("thread_safety", safety).set("concurrent", concurrent).set("threads", threads);
    if (sequential) {
      double lo = *std::min_element(frames.begin(), frames.end()), hi = *std::max_element(frames.begin(), frames.end());
      OfxStatus st = e.beginRenderAction(lo, hi, 1, interactive, scale, true, interactive);
      answer.set("begin_status", statusName(st));
      if (!okStatus(st)) throw Error("kOfxImageEffectActionBeginSequenceRender failed", st);
    }

    const size_t n = frames.size();
    std::vector<std::shared_ptr<RenderJob>> jobs(n);
    auto outcomes = std::make_shared<std::vector<Outcome>>(n);
    for (size_t i = 0; i < n; i++) {
      jobs[i] = std::make_shared<RenderJob>();
      jobs[i]->time = frames[i];
      jobs[i]->scale = scale;
      jobs[i]->depth = outClip->depth();
      jobs[i]->channels = outClip->channels();
    }
    struct Shared {
      std::mutex m;
      std::condition_variable cv;
      size_t next = 0;
      bool stop = false;
      std::vector<int> state;  // 0 queued, 1 running, 2 done, 3 abandoned, 4 not started
      std::vector<std::chrono::steady_clock::time_point> started, aborted;
      std::atomic<int> inRender{0}, maxInRender{0};
    };
    auto sh = std::make_shared<Shared>();
    sh->state.assign(n, 0);
    sh->started.resize(n);
    sh->aborted.resize(n);
    host_.abortAll = 0;

    auto worker = [this, sh, jobs, outcomes, c, sequential, interactive, draft, serial]() {
      while (true) {
        size_t i;
        {
          std::lock_guard<std::mutex> l(sh->m);
          if (sh->stop || sh->next >= jobs.size()) return;
          i = sh->next++;
          sh->state[i] = 1;
          sh->started[i] = std::chrono::steady_clock::now();
          sh->cv.notify_all();  // the waiting thread now has a deadline to watch
        }
        Outcome o;
        renderOne(*jobs[i], o, c, sequential, interactive, draft, serial, sh->inRender, sh->maxInRender);
        std::lock_guard<std::mutex> l(sh->m);
        if (sh->state[i] == 3) return;  // the host gave up on this frame: its outcome stays "timeout"
        (*outcomes)[i] = std::move(o);
        sh->state[i] = 2;
        sh->cv.notify_all();
      }
    };
    std::vector<std::thread> pool;
    int nThreads = int(std::min<size_t>(size_t(threads), n));
    for (int t = 0; t < nThreads; t++) pool.emplace_back(worker);

    bool abandoned = false;
    {
      std::unique_lock<std::mutex> l(sh->m);
      while (true) {
        auto now = std::chrono::steady_clock::now();
        bool busy = false;
        auto wake = now + std::chrono::seconds(1);
        for (size_t i = 0; i < n; i++) {
          if (sh->state[i] == 0) busy = busy || !sh->stop;
          if (sh->state[i] != 1) continue;
          busy = true;
          auto deadline = sh->started[i] + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double>(timeout));
          if (!jobs[i]->abort.load() && now >= deadline) {
            jobs[i]->abort = 1;  // the plugin sees it through the abort function
            sh->aborted[i] = now;
          }
          if (jobs[i]->abort.load()) {
            auto giveUp = sh->aborted[i] + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double>(grace));
            if (now >= giveUp) {
              sh->state[i] = 3;
              (*outcomes)[i].ok = false;
              (*outcomes)[i].error = "timeout: the plugin did not return within " + std::to_string(timeout) +
                                     " s (and " + std::to_string(grace) + " s after abort)";
              sh->stop = true;  // no new frames once a render thread is stuck
              abandoned = true;
            } else {
              wake = std::min(wake, giveUp);
            }
          } else {
            wake = std::min(wake, deadline);
          }
        }
        if (!busy) break;
        sh->cv.wait_until(l, wake);
      }
      for (size_t i = 0; i < n; i++)
        if (sh->state[i] == 0) {
          sh->state[i] = 4;
          (*outcomes)[i].error = "not rendered: an earlier frame timed out";
        }
    }
    for (auto &t : pool) {
      if (abandoned) t.detach();  // a stuck thread cannot be joined; the host refuses further work
      else t.join();
    }
    if (abandoned) hung_ = true;
    if (sequential && !abandoned) {
      double lo = *std::min_element(frames.begin(), frames.end()), hi = *std::max_element(frames.begin(), frames.end());
      OfxStatus st = e.endRenderAction(lo, hi, 1, interactive, scale, true, interactive);
      answer.set("end_status", statusName(st));
    }

    Json list = Json::array();
    bool allOk = true;
    for (size_t i = 0; i < n; i++) {
      Outcome &o = (*outcomes)[i];
      RenderJob &job = *jobs[i];
      Json fj2 = Json::object();
      fj2.set("frame", frames[i]).set("ok", o.ok).set("status", statusName(o.status)).set("code", int(o.status));
      if (!o.error.empty()) fj2.set("error", o.error);
      fj2.set("ms", o.ms).set("render_ms", o.renderMs);
      if (sh->state[i] == 2) {
        fj2.set("window", rectJson(job.window)).set("bounds", rectJson(job.bounds)).set("rod", rectJson(job.rod));
        if (!o.identityClip.empty())
          fj2.set("identity", Json::object().set("clip", o.identityClip).set("time", o.identityTime));
        Json fetched = Json::array();
        {
          std::lock_guard<std::mutex> l(job.mutex);
          std::vector<double> f = job.fetched;
          std::sort(f.begin(), f.end());
          f.erase(std::unique(f.begin(), f.end()), f.end());
          for (double t : f) fetched.push(t);
        }
        fj2.set("fetched", fetched);
        if (!o.framesNeeded.empty()) {
          Json fn = Json::array();
          for (double t : o.framesNeeded) fn.push(t);
          fj2.set("frames_needed", fn);
        }
        if (o.overrun) fj2.set("overrun", true);
        if (o.ok) {
          const unsigned char *data = job.data();
          int h = job.bounds.y2 - job.bounds.y1;
          fj2.set("checksum", hex64(fnv1a(data, size_t(job.rowBytes) * size_t(h))));
          if (outputBounds == "rod") {
            // pixels outside the window still holding the host's fill: the plugin left them alone
            bool outside = false;
            const size_t px = size_t(job.channels) * size_t(job.depth);
            for (int y = job.bounds.y1; y < job.bounds.y2 && !outside; y++)
              for (int x = job.bounds.x1; x < job.bounds.x2; x++) {
                if (x >= job.window.x1 && x < job.window.x2 && y >= job.window.y1 && y < job.window.y2) continue;
                const unsigned char *p = data + size_t(y - job.bounds.y1) * job.rowBytes + size_t(x - job.bounds.x1) * px;
                for (size_t b = 0; b < px; b++)
                  if (p[b] != 0xA5) outside = true;
                if (outside) break;
              }
            fj2.set("wrote_outside_window", outside);
          }
          if (!out.empty()) {
            Json meta = Json::object();
            meta.set("frame", frames[i]).set("window", rectJson(job.window)).set("rod", rectJson(job.rod));
            meta.set("render_scale", Json(Json::Array{scale.x, scale.y}));
            writePicture(out, frameName(frames[i]), data, job.rowBytes, job.bounds, job.depth, job.channels, meta, fj2);
          }
        }
      }
      allOk = allOk && o.ok;
      list.push(fj2);
    }
    {
      std::lock_guard<std::mutex> l(host_.fetchMutex);
      Json stray = Json::array();
      for (double t : host_.strayFetches) stray.push(t);
      host_.strayFetches.clear();
      answer.set("stray_fetches", stray);
    }
    answer.set("ok", allOk).set("frames", list).set("max_concurrent", sh->maxInRender.load());
    return answer;
  }
};

}  // namespace th

int main(int argc, char **argv) {
  using namespace th;
  // The protocol gets its own descriptor; stdout itself goes to stderr, so whatever a plugin or
  // the SDK prints cannot break a JSON line.
  gProtoFd = dup(1);
  if (gProtoFd < 0 || dup2(2, 1) < 0) {
    std::perror("ofx-testhost: dup");
    return 2;
  }
  gProto = fdopen(gProtoFd, "w");
  for (int s : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) signal(s, crashHandler);

  std::vector<std::string> dirs;
  bool stdPaths = false;
  std::string cacheFile, hostName = "org.liveedit.ofx-testhost", answers = "yes";
  unsigned cpus = 0;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ofx-testhost: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--plugin-path") {
      std::string v = value();
      size_t start = 0;
      while (start <= v.size()) {
        size_t colon = v.find(':', start);
        std::string d = v.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        if (!d.empty()) dirs.push_back(d);
        if (colon == std::string::npos) break;
        start = colon + 1;
      }
    } else if (a == "--std-paths") {
      stdPaths = true;
    } else if (a == "--cache") {
      cacheFile = value();
    } else if (a == "--host-name") {
      hostName = value();
    } else if (a == "--cpus") {
      cpus = unsigned(std::atoi(value().c_str()));
    } else if (a == "--answer-questions") {
      answers = value();
    } else if (a == "-h" || a == "--help") {
      std::fprintf(stderr,
                   "usage: ofx-testhost --plugin-path DIR[:DIR] [--std-paths] [--cache FILE] [--host-name NAME]\n"
                   "                    [--cpus N] [--answer-questions yes|no]\n"
                   "JSON-lines commands on stdin, answers and events on stdout.\n");
      return 0;
    } else {
      std::fprintf(stderr, "ofx-testhost: unknown argument %s\n", a.c_str());
      return 2;
    }
  }

  auto *pc = SearchPathCache::install(dirs, stdPaths);
  Session session(hostName, pc);
  session.host().cpus = cpus;
  session.host().questionReply = answers == "no" ? kOfxStatReplyNo : kOfxStatReplyYes;
  session.scan(cacheFile);
  {
    Json ready = Json::object();
    ready.set("plugins", (long long)OFX::Host::PluginCache::getPluginCache()->getPlugins().size());
    emitEvent("ready", ready);
  }

  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json answer;
    Json cmd;
    std::string name;
    try {
      cmd = Json::parse(line);
      if (!cmd.isObject()) throw Error("a command is a JSON object");
      name = cmd.str("cmd");
      if (name == "quit") {
        answer = Json::object().set("ok", true);
      } else {
        answer = session.dispatch(name, cmd);
      }
    } catch (const Error &e) {
      answer = Json::object().set("ok", false).set("error", e.what()).set("status", statusName(e.status)).set("code", int(e.status));
    } catch (const std::exception &e) {
      answer = Json::object().set("ok", false).set("error", e.what());
    }
    answer.set("cmd", name);
    if (cmd.isObject() && cmd.find("id")) answer.set("id", *cmd.find("id"));
    emitLine(answer);
    if (name == "quit") break;
  }
  if (session.hung()) {
    // a plugin thread is stuck: tearing down would wait for it or free memory it uses
    std::fflush(nullptr);
    _exit(0);
  }
  session.shutdown();
  std::fflush(nullptr);
  return 0;
}
