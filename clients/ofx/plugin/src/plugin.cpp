// The LiveEdit OpenFX effect: a thin client of the running sidecar (`liveedit serve`).
//
// For frame t it hashes the source frames from the edit start through the end of t's chunk
// (temporal clip access), asks the sidecar's take for t's edit (sidecar/takes/service.py), uploads the
// source frames the sidecar asks for, and writes exactly the render window it gets back. The
// edit of a frame is a pure function of those source frames and the settings, so any order
// and any number of host threads give the same pixels. When the sidecar cannot deliver, an
// interactive render shows the source unedited with a message and a final render fails: it never
// writes unedited frames into a deliverable.
//
// Inside someone else's process: no exception leaves an entry point (see entry.cpp), every
// socket call has a timeout, the host's abort flag is polled while waiting, and only the two
// OpenFX entry points are exported.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ofxColour.h"
#include "ofxsImageEffect.h"

#include "images.hpp"
#include "plugin.hpp"
#include "sidecar.hpp"

namespace liveedit {

namespace {

const char kPluginId[] = "org.liveedit.LiveEdit";
const char kParamInstruction[] = "instruction";
const char kParamSeed[] = "seed";
const char kParamQuality[] = "quality";
const char kParamMaskCache[] = "maskCache";
const char kParamEditStart[] = "editStart";
const char kParamInputColour[] = "inputColour";
const char kParamStatus[] = "status";
const char kParamCheck[] = "checkSidecar";

const int kWaitMs = 500;                  // one long poll; the host's abort flag is read between polls
const size_t kUploadBatchBytes = 96u << 20;  // under the sidecar's 160 MiB body cap, a 4K float frame fits

struct Aborted {};  // the host asked the render to stop

double envSeconds(const char* name, double fallback) {
    const char* value = std::getenv(name);
    if (!value || !*value) return fallback;
    char* end = nullptr;
    double seconds = std::strtod(value, &end);
    return (end && *end == '\0' && seconds > 0 && seconds < 86400) ? seconds : fallback;
}

// LIVEEDIT_OFX_TRACE=1: each render's phases on stderr (diagnosing a slow host or sidecar).
bool tracing() {
    static const bool on = [] {
        const char* v = std::getenv("LIVEEDIT_OFX_TRACE");
        return v && *v && *v != '0';
    }();
    return on;
}

thread_local std::chrono::steady_clock::time_point tRenderStart;  // this thread's render action began
thread_local double tRenderStartCpuMs = 0;

// CPU time of the whole host process so far, in ms (the trace's "CPU" figure: in a render the host
// runs one frame at a time, that is the plug-in's work and the host's calls made for it).
double processCpuMs() {
#ifdef _WIN32
    return 0;
#else
    return std::clock() * 1000.0 / CLOCKS_PER_SEC;
#endif
}

double msSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

bool trustImageIds() {
    static const bool on = [] {
        const char* v = std::getenv("LIVEEDIT_OFX_TRUST_IMAGE_IDS");
        return v && *v && *v != '0';
    }();
    return on;
}

Timeouts timeouts() {
    Timeouts t;
    t.ioMs = int(envSeconds("LIVEEDIT_OFX_IO_TIMEOUT", 10.0) * 1000);
    t.connectMs = std::min(t.ioMs, 2000);
    return t;
}

// Frames of the source clip, as whole frame numbers.
struct FrameRange {
    int64_t first, last;
};

bool isDisplayColourspace(const std::string& name) {
    return name == kOfxColourspaceOfxDisplaySdr || name == kOfxColourspaceSrgbTx || name == kOfxColourspaceSrgbDisplay;
}

bool isLinearColourspace(const std::string& name) {
    return name == kOfxColourspaceOfxSceneLinear || name == kOfxColourspaceLinRec709Srgb;
}

}  // namespace

class LiveEditEffect : public OFX::ImageEffect {
public:
    explicit LiveEditEffect(OfxImageEffectHandle handle)
        : OFX::ImageEffect(handle),
          // every clip and parameter is fetched here, once: fetching from render threads would
          // race inside the support library's maps
          src_(fetchClip(kOfxImageEffectSimpleSourceClipName)),
          dst_(fetchClip(kOfxImageEffectOutputClipName)),
          instruction_(fetchStringParam(kParamInstruction)),
          seed_(fetchIntParam(kParamSeed)),
          quality_(fetchChoiceParam(kParamQuality)),
          maskCache_(fetchBooleanParam(kParamMaskCache)),
          editStart_(fetchIntParam(kParamEditStart)),
          inputColour_(fetchChoiceParam(kParamInputColour)),
          status_(fetchStringParam(kParamStatus)) {
        refreshStatus();
    }

    void render(const OFX::RenderArguments& args) override;
    bool isIdentity(const OFX::IsIdentityArguments& args, OFX::Clip*& clip, double& time) override;
    void getRegionsOfInterest(const OFX::RegionsOfInterestArguments& args, OFX::RegionOfInterestSetter& rois) override;
    void getFramesNeeded(const OFX::FramesNeededArguments& args, OFX::FramesNeededSetter& frames) override;
    void beginSequenceRender(const OFX::BeginSequenceRenderArguments& args) override;
    void endSequenceRender(const OFX::EndSequenceRenderArguments& args) override;
    void changedParam(const OFX::InstanceChangedArgs& args, const std::string& name) override;
    void changedClip(const OFX::InstanceChangedArgs& args, const std::string& name) override;
    void purgeCaches() override { forgetHashes(); }

private:
    struct Settings {
        TakeSettings take;
        bool enabled = false;  // an instruction is set
        int editStart = 0;
    };

    Settings settings();
    FrameRange frameRange();
    Layout layout(SidecarClient* client);
    SourceInfo source(int64_t time, const OfxPointD& scale, int* hashed);
    void renderEdit(const OFX::RenderArguments& args);
    void upload(SidecarClient& client, const TakeSettings& take, int64_t start, const std::vector<int64_t>& need,
                const std::vector<Hash128>& hashes);
    void passThrough(const OFX::RenderArguments& args);
    void fail(const OFX::RenderArguments& args, const std::string& reason);
    void succeeded(const TakeStatus& status);
    void forgetHashes();
    void refreshStatus();

    OFX::Clip* src_;
    OFX::Clip* dst_;
    OFX::StringParam* instruction_;
    OFX::IntParam* seed_;
    OFX::ChoiceParam* quality_;
    OFX::BooleanParam* maskCache_;
    OFX::IntParam* editStart_;
    OFX::ChoiceParam* inputColour_;
    OFX::StringParam* status_;

    // Source hashes, kept between Begin- and EndSequenceRender only (outside a sequence the host
    // may change upstream pictures without telling anyone, so every render hashes afresh).
    std::mutex memoMutex_;
    int sequences_ = 0;
    std::map<std::tuple<int64_t, double, double>, SourceInfo> memo_;
    // LIVEEDIT_OFX_TRUST_IMAGE_IDS=1: hashes also kept between renders, under the host's
    // kOfxImagePropUniqueIdentifier (the spec's way to tell a plug-in an image changed). Off by
    // default: a host whose identifiers do not change with the picture would get stale edits.
    std::map<std::tuple<int64_t, double, double>, std::pair<std::string, SourceInfo>> byImageId_;

    // Source frames being uploaded by one of this instance's render threads.
    std::mutex uploadMutex_;
    std::condition_variable uploadDone_;
    std::set<int64_t> uploading_;

    std::mutex layoutMutex_;
    bool haveLayout_ = false;
    Layout layout_;

    // What the host shows: 0 nothing, 1 the random-weights warning, 2 an error.
    std::atomic<int> messageState_{0};
    std::atomic<int64_t> lastReady_{-1}, lastFrames_{0};
    std::mutex errorMutex_;
    std::string lastError_;
};

// -- settings -----------------------------------------------------------------------------------

LiveEditEffect::Settings LiveEditEffect::settings() {
    Settings s;
    std::string text;
    instruction_->getValue(text);
    s.take.instruction = text;
    s.enabled = text.find_first_not_of(" \t\r\n") != std::string::npos;
    s.take.seed = seed_->getValue();
    int quality = 0, colour = 0;
    quality_->getValue(quality);
    s.take.quality = quality == 1 ? "preview" : "full";
    s.take.maskCache = maskCache_->getValue();
    s.editStart = std::max(0, editStart_->getValue());
    inputColour_->getValue(colour);
    s.take.colour = colour == 1 ? "linear" : "display";
    // OFX 1.5 colour management: when the host says which colourspace the source is in, that wins.
    const std::string style = getPropertySet().propGetString(kOfxImageEffectPropColourManagementStyle, false);
    if (!style.empty() && style != kOfxImageEffectColourManagementNone) {
        const std::string space = src_->getPropertySet().propGetString(kOfxImageClipPropColourspace, false);
        if (isDisplayColourspace(space)) s.take.colour = "display";
        else if (isLinearColourspace(space)) s.take.colour = "linear";
    }
    return s;
}

FrameRange LiveEditEffect::frameRange() {
    OfxRangeD range = src_->getFrameRange();
    return {int64_t(std::ceil(range.min - 1e-6)), int64_t(std::floor(range.max + 1e-6))};
}

Layout LiveEditEffect::layout(SidecarClient* client) {
    {
        std::lock_guard<std::mutex> lock(layoutMutex_);
        if (haveLayout_ || !client) return layout_;  // the editor's layout (9, then 12) until the sidecar is asked
    }
    Json info = client->info();  // not under the lock: other render threads never wait on the network
    Layout l;
    l.first = int(info["first_chunk_frames"].asInt(9));
    l.chunk = int(info["chunk_frames"].asInt(12));
    if (l.first < 1 || l.chunk < 1) throw SidecarError("the sidecar reported an impossible chunk layout");
    std::lock_guard<std::mutex> lock(layoutMutex_);
    layout_ = l;
    haveLayout_ = true;
    return layout_;
}

// -- source hashes ----------------------------------------------------------------------------

SourceInfo LiveEditEffect::source(int64_t time, const OfxPointD& scale, int* hashed) {
    const auto key = std::make_tuple(time, scale.x, scale.y);
    {
        std::lock_guard<std::mutex> lock(memoMutex_);
        if (sequences_ > 0) {
            auto it = memo_.find(key);
            if (it != memo_.end()) return it->second;
        }
    }
    std::unique_ptr<OFX::Image> image(src_->fetchImage(double(time)));
    if (!image) throw SidecarError("the host gave no source image for frame " + std::to_string(time));
    const std::string id = trustImageIds() ? image->getUniqueIdentifier() : std::string();
    if (!id.empty()) {
        std::lock_guard<std::mutex> lock(memoMutex_);
        auto it = byImageId_.find(key);
        if (it != byImageId_.end() && it->second.first == id) {
            if (sequences_ > 0) memo_[key] = it->second.second;
            return it->second.second;
        }
    }
    SourceInfo info = describeSource(*image);
    ++*hashed;
    std::lock_guard<std::mutex> lock(memoMutex_);
    if (sequences_ > 0) memo_[key] = info;
    if (!id.empty()) {
        if (byImageId_.size() >= 100000) byImageId_.clear();  // bounded: 100,000 frames is over an hour
        byImageId_[key] = {id, info};
    }
    return info;
}

void LiveEditEffect::forgetHashes() {
    std::lock_guard<std::mutex> lock(memoMutex_);
    memo_.clear();
    byImageId_.clear();
}

void LiveEditEffect::beginSequenceRender(const OFX::BeginSequenceRenderArguments&) {
    std::lock_guard<std::mutex> lock(memoMutex_);
    if (sequences_++ == 0) memo_.clear();
}

void LiveEditEffect::endSequenceRender(const OFX::EndSequenceRenderArguments&) {
    std::lock_guard<std::mutex> lock(memoMutex_);
    if (sequences_ > 0 && --sequences_ == 0) memo_.clear();
}

// -- what the host asks before rendering --------------------------------------------------------

bool LiveEditEffect::isIdentity(const OFX::IsIdentityArguments& args, OFX::Clip*& clip, double& time) {
    Settings s = settings();
    const FrameRange range = frameRange();
    if (s.enabled && std::llround(args.time) >= range.first + s.editStart) return false;
    clip = src_;  // no instruction, or before the edit start: the source as it is
    time = args.time;
    return true;
}

void LiveEditEffect::getRegionsOfInterest(const OFX::RegionsOfInterestArguments& args,
                                          OFX::RegionOfInterestSetter& rois) {
    rois.setRegionOfInterest(*src_, src_->getRegionOfDefinition(args.time));  // the model sees whole frames
}

void LiveEditEffect::getFramesNeeded(const OFX::FramesNeededArguments& args, OFX::FramesNeededSetter& frames) {
    Settings s = settings();
    const FrameRange range = frameRange();
    const int64_t t = std::llround(args.time), start = range.first + s.editStart;
    OfxRangeD needed{args.time, args.time};
    if (s.enabled && t >= start && t <= range.last) {
        const int64_t last = std::min(start + layout(nullptr).chunkEnd(t - start), range.last);
        needed = {double(start), double(last)};  // the causal stream: the edit start through t's chunk
    }
    frames.setFramesNeeded(*src_, needed);
}

// -- rendering ----------------------------------------------------------------------------------

void LiveEditEffect::render(const OFX::RenderArguments& args) {
    tRenderStart = std::chrono::steady_clock::now();
    if (tracing()) tRenderStartCpuMs = processCpuMs();
    try {
        renderEdit(args);
        return;
    } catch (const Aborted&) {
    } catch (const SidecarError& e) {
        fail(args, e.what());
        return;
    } catch (const JsonError& e) {
        fail(args, e.what());
        return;
    } catch (const OFX::Exception::Suite& e) {
        fail(args, std::string("the host refused a request (") + e.what() + ")");
        return;
    } catch (const std::bad_alloc&) {
        fail(args, "out of memory");
        return;
    } catch (const std::exception& e) {
        fail(args, e.what());
        return;
    } catch (...) {
        fail(args, "an unexpected error");
        return;
    }
    OFX::throwSuiteStatusException(kOfxStatFailed);  // aborted: the host discards the frame
}

void LiveEditEffect::renderEdit(const OFX::RenderArguments& args) {
    const Settings s = settings();
    const FrameRange range = frameRange();
    const int64_t t = std::llround(args.time), start = range.first + s.editStart;
    if (!s.enabled || t < start || t > range.last) {
        passThrough(args);
        return;
    }
    const double limit = args.interactiveRenderStatus ? envSeconds("LIVEEDIT_OFX_INTERACTIVE_TIMEOUT", 60.0)
                                                      : envSeconds("LIVEEDIT_OFX_FINAL_TIMEOUT", 600.0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(limit * 1000));
    SidecarClient client(locateSidecar(), timeouts());
    const Layout l = layout(&client);
    const int64_t index = t - start;
    const int64_t last = std::min(l.chunkEnd(index), range.last - start);

    const auto began = std::chrono::steady_clock::now();
    std::vector<Hash128> hashes(size_t(last + 1));
    SourceInfo frame;
    int hashed = 0;
    for (int64_t k = 0; k <= last; ++k) {
        if (abort()) throw Aborted();
        SourceInfo info = source(start + k, args.renderScale, &hashed);
        hashes[size_t(k)] = info.hash;
        if (k == index) frame = info;
    }
    std::unique_ptr<OFX::Image> dst(dst_->fetchImage(args.time));
    if (!dst) throw SidecarError("the host gave no output image");
    // RGBA with a real alpha: the edit keeps this frame's alpha, copied from here rather than sent
    // back and forth (an opaque one comes back as "opaque": no source image needed)
    const bool alphaFromSource = frame.format.channels == 4 && !frame.opaque;
    std::unique_ptr<OFX::Image> srcImage(alphaFromSource ? src_->fetchImage(args.time) : nullptr);
    if (alphaFromSource && !srcImage) throw SidecarError("the host gave no source image for frame " + std::to_string(t));
    const PixelFormat out = formatOf(*dst);
    if (out.depth != frame.format.depth || out.channels != frame.format.channels)
        throw SidecarError("the output image's format differs from the source's; LiveEdit keeps one format");
    const OfxRectI window = intersect(args.renderWindow, dst->getBounds());
    if (window.x2 <= window.x1 || window.y2 <= window.y1) return;  // nothing to draw
    const int relative[4] = {window.x1 - frame.rod.x1, window.y1 - frame.rod.y1, window.x2 - frame.rod.x1,
                             window.y2 - frame.rod.y1};
    const double hashedMs = msSince(began);

    while (true) {
        if (abort()) throw Aborted();
        const auto asked = std::chrono::steady_clock::now();
        FrameAnswer answer = client.requestFrame(s.take, index, hashes, out, relative, kWaitMs, alphaFromSource);
        if (answer.state == FrameAnswer::State::Ready) {
            const auto answered = std::chrono::steady_clock::now();
            writeWindow(*dst, window, answer.meta, answer.payload(), answer.payloadSize(), srcImage.get());
            succeeded(answer.status);
            if (tracing())
                std::fprintf(stderr, "liveedit-ofx: frame %lld: %d of %zu source frames hashed, sources and hashes "
                             "%.1f ms, last request %.1f ms, writing %.1f ms, render action %.1f ms (process CPU "
                             "%.1f ms)\n", (long long)t, hashed, hashes.size(), hashedMs,
                             std::chrono::duration<double, std::milli>(answered - asked).count(), msSince(answered),
                             msSince(tRenderStart), processCpuMs() - tRenderStartCpuMs);
            return;
        }
        lastReady_ = answer.status.framesReady;
        lastFrames_ = answer.status.frames;
        if (answer.state == FrameAnswer::State::NeedSources) upload(client, s.take, start, answer.need, hashes);
        if (std::chrono::steady_clock::now() > deadline)
            throw SidecarError("the sidecar did not finish frame " + std::to_string(t) + " within " +
                               std::to_string(int(limit)) + " s (" + std::to_string(answer.status.framesReady) + " of " +
                               std::to_string(answer.status.frames) + " frames of its chunk ready)");
    }
}

void LiveEditEffect::upload(SidecarClient& client, const TakeSettings& take, int64_t start,
                            const std::vector<int64_t>& need, const std::vector<Hash128>& hashes) {
    std::vector<int64_t> mine;
    {
        std::unique_lock<std::mutex> lock(uploadMutex_);
        for (int64_t k : need) {
            if (k < 0 || k >= int64_t(hashes.size())) throw SidecarError("the sidecar asked for a frame outside the take");
            if (uploading_.insert(start + k).second) mine.push_back(k);
        }
        if (mine.empty()) {  // another render thread is sending them: wait for it, briefly
            uploadDone_.wait_for(lock, std::chrono::milliseconds(kWaitMs), [&] {
                return std::none_of(need.begin(), need.end(), [&](int64_t k) { return uploading_.count(start + k); });
            });
            return;
        }
    }
    struct Release {  // the claims go, whatever happens
        LiveEditEffect* self;
        std::vector<int64_t>& frames;
        int64_t start;
        ~Release() {
            std::lock_guard<std::mutex> lock(self->uploadMutex_);
            for (int64_t k : frames) self->uploading_.erase(start + k);
            self->uploadDone_.notify_all();
        }
    } release{this, mine, start};

    std::vector<std::unique_ptr<PackedFrame>> batch;
    size_t bytes = 0;
    auto send = [&] {
        if (batch.empty()) return;
        std::vector<SourceFrame> frames;
        for (auto& p : batch) {
            const SourceInfo& info = p->info();
            frames.push_back({info.hash, 0, info.width(), info.height(), info.format, info.premultiplied, p->data()});
        }
        client.uploadSources(take, frames);
        batch.clear();
        bytes = 0;
    };
    for (int64_t k : mine) {
        if (abort()) throw Aborted();
        std::unique_ptr<OFX::Image> image(src_->fetchImage(double(start + k)));
        if (!image) throw SidecarError("the host gave no source image for frame " + std::to_string(start + k));
        auto packed = std::make_unique<PackedFrame>(std::move(image));
        if (!(packed->info().hash == hashes[size_t(k)]))
            throw SidecarError("source frame " + std::to_string(start + k) +
                               " changed while this frame rendered; render it again");
        bytes += size_t(packed->info().width()) * size_t(packed->info().height()) * packed->info().format.pixelBytes();
        batch.push_back(std::move(packed));
        if (bytes >= kUploadBatchBytes) send();
    }
    send();
}

void LiveEditEffect::passThrough(const OFX::RenderArguments& args) {
    std::unique_ptr<OFX::Image> dst(dst_->fetchImage(args.time));
    if (!dst) OFX::throwSuiteStatusException(kOfxStatFailed);
    std::unique_ptr<OFX::Image> src(src_->isConnected() ? src_->fetchImage(args.time) : nullptr);
    copyWindow(*dst, intersect(args.renderWindow, dst->getBounds()), src.get());
}

void LiveEditEffect::fail(const OFX::RenderArguments& args, const std::string& reason) {
    {
        std::lock_guard<std::mutex> lock(errorMutex_);
        lastError_ = reason;
    }
    messageState_ = 2;
    if (args.interactiveRenderStatus) {
        setPersistentMessage(OFX::Message::eMessageError, "",
                             "LiveEdit: " + reason + " - showing the source unedited");
        try {
            passThrough(args);
            return;
        } catch (...) {  // not even the source: the frame fails
        }
    } else {
        setPersistentMessage(OFX::Message::eMessageError, "",
                             "LiveEdit: " + reason + " - the render stops here instead of writing unedited frames");
    }
    OFX::throwSuiteStatusException(kOfxStatFailed);
}

void LiveEditEffect::succeeded(const TakeStatus& status) {
    lastReady_ = status.framesReady;
    lastFrames_ = status.frames;
    {
        std::lock_guard<std::mutex> lock(errorMutex_);
        lastError_.clear();
    }
    if (status.randomWeights) {
        if (messageState_.exchange(1) != 1)
            setPersistentMessage(OFX::Message::eMessageWarning, "",
                                 "LiveEdit: the sidecar runs RANDOM weights (--model tiny): the picture is noise, not an edit");
    } else if (messageState_.exchange(0) != 0) {
        clearPersistentMessage();
    }
}

// -- the status line ------------------------------------------------------------------------------

void LiveEditEffect::changedParam(const OFX::InstanceChangedArgs&, const std::string& name) {
    if (name == kParamStatus) return;
    forgetHashes();
    refreshStatus();
}

void LiveEditEffect::changedClip(const OFX::InstanceChangedArgs&, const std::string&) {
    forgetHashes();  // the host says the input changed
}

void LiveEditEffect::refreshStatus() {
    // Only here (create, instance changed: the host's main thread) may a parameter be set. Quick
    // timeouts: this runs while the user waits for the panel.
    std::string text;
    try {
        Timeouts quick;
        quick.connectMs = 500;
        quick.ioMs = 2000;
        SidecarClient client(locateSidecar(), quick);
        Json info = client.info();
        text = "Connected to the LiveEdit sidecar on " + client.endpoint().describe();
        if (info["random_weights"].asBool())
            text += " | RANDOM WEIGHTS (--model tiny): the output is noise, not an edit";
        else
            text += " | " + info["model"].asString();
    } catch (const std::exception& e) {
        text = std::string("Not connected: ") + e.what();
    } catch (...) {
        text = "Not connected";
    }
    if (lastReady_ >= 0)
        text += " | last render: " + std::to_string(lastReady_.load()) + " of " + std::to_string(lastFrames_.load()) +
                " frames ready";
    {
        std::lock_guard<std::mutex> lock(errorMutex_);
        if (!lastError_.empty()) text += " | last error: " + lastError_;
    }
    status_->setValue(text);
}

// -- description ----------------------------------------------------------------------------------

void LiveEditFactory::describe(OFX::ImageEffectDescriptor& desc) {
    desc.setLabels("LiveEdit", "LiveEdit", "LiveEdit (text-instructed video edit)");
    desc.setPluginGrouping("LiveEdit");
    desc.setPluginDescription(
        "Edits the clip by a text instruction with the LiveEdit model running in the local sidecar "
        "(`liveedit serve`). Frame t is the causal edit of the frames from the edit start through t's chunk.");
    desc.addSupportedContext(OFX::eContextFilter);
    desc.addSupportedContext(OFX::eContextGeneral);
    desc.addSupportedBitDepth(OFX::eBitDepthUByte);
    desc.addSupportedBitDepth(OFX::eBitDepthUShort);
    desc.addSupportedBitDepth(OFX::eBitDepthFloat);
    desc.setSingleInstance(false);
    desc.setHostFrameThreading(false);
    desc.setSupportsMultiResolution(true);
    desc.setSupportsTiles(true);
    desc.setTemporalClipAccess(true);
    desc.setRenderTwiceAlways(false);
    desc.setSupportsMultipleClipDepths(false);
    // Renders of one instance may run at once: state shared between them is behind mutexes and
    // each render has its own connections.
    desc.setRenderThreadSafety(OFX::eRenderFullySafe);
    describeColourManagement(desc);
}

void LiveEditFactory::describeInContext(OFX::ImageEffectDescriptor& desc, OFX::ContextEnum) {
    OFX::ClipDescriptor* src = desc.defineClip(kOfxImageEffectSimpleSourceClipName);
    src->addSupportedComponent(OFX::ePixelComponentRGBA);
    src->addSupportedComponent(OFX::ePixelComponentRGB);
    src->setTemporalClipAccess(true);
    src->setSupportsTiles(false);  // the model sees whole frames
    src->setIsMask(false);
    OFX::ClipDescriptor* dst = desc.defineClip(kOfxImageEffectOutputClipName);
    dst->addSupportedComponent(OFX::ePixelComponentRGBA);
    dst->addSupportedComponent(OFX::ePixelComponentRGB);
    dst->setSupportsTiles(true);

    OFX::PageParamDescriptor* page = desc.definePageParam("Controls");

    OFX::StringParamDescriptor* instruction = desc.defineStringParam(kParamInstruction);
    instruction->setLabel("Instruction");
    instruction->setHint("What the edit should do, e.g. \"make the fur snowy white\". Empty: the clip passes through.");
    instruction->setStringType(OFX::eStringTypeMultiLine);
    instruction->setDefault("");
    instruction->setAnimates(false);  // one take has one instruction
    page->addChild(*instruction);

    OFX::IntParamDescriptor* seed = desc.defineIntParam(kParamSeed);
    seed->setLabel("Seed");
    seed->setHint("The edit's noise seed: another seed, another variation of the same edit.");
    seed->setDefault(0);
    seed->setRange(0, 2147483647);
    seed->setDisplayRange(0, 1000);
    seed->setAnimates(false);
    page->addChild(*seed);

    OFX::ChoiceParamDescriptor* quality = desc.defineChoiceParam(kParamQuality);
    quality->setLabel("Quality");
    quality->setHint("Full: edited like a render. Preview: the tiny preview VAE (needs taew2_1.pth in the sidecar's "
                     "weights folder), faster and softer.");
    quality->appendOption("Full");
    quality->appendOption("Preview");
    quality->setDefault(0);
    quality->setAnimates(false);
    page->addChild(*quality);

    OFX::BooleanParamDescriptor* mask = desc.defineBooleanParam(kParamMaskCache);
    mask->setLabel("Mask cache");
    mask->setHint("LiveEdit's mask cache: recompute only what the edit changes (faster, a little different).");
    mask->setDefault(false);
    mask->setAnimates(false);
    page->addChild(*mask);

    OFX::IntParamDescriptor* editStart = desc.defineIntParam(kParamEditStart);
    editStart->setLabel("Edit start");
    editStart->setHint("Frames after the clip's first frame where the edit's causal stream starts (0: the first "
                       "frame). Earlier frames pass through unedited.");
    editStart->setDefault(0);
    editStart->setRange(0, 10000000);
    editStart->setDisplayRange(0, 1000);
    editStart->setAnimates(false);
    page->addChild(*editStart);

    OFX::ChoiceParamDescriptor* colour = desc.defineChoiceParam(kParamInputColour);
    colour->setLabel("Input colour");
    colour->setHint("How the clip's values reach the model when the host does not say (OpenFX colour management): "
                    "display-referred Rec.709/sRGB as they are, or scene-linear Rec.709 (sRGB-encoded for the model "
                    "and back; values above 1 clip).");
    colour->appendOption("Rec.709/sRGB display-referred");
    colour->appendOption("Scene-linear Rec.709");
    colour->setDefault(0);
    colour->setAnimates(false);
    page->addChild(*colour);

    OFX::StringParamDescriptor* status = desc.defineStringParam(kParamStatus);
    status->setLabel("Status");
    status->setHint("The sidecar connection, frames ready and whether the sidecar's weights are random.");
    status->setStringType(OFX::eStringTypeLabel);
    status->setDefault("Not checked yet");
    status->setAnimates(false);
    status->setEvaluateOnChange(false);
    status->setIsPersistant(false);
    page->addChild(*status);

    OFX::PushButtonParamDescriptor* check = desc.definePushButtonParam(kParamCheck);
    check->setLabel("Check sidecar");
    check->setHint("Ask the sidecar again and update the status line.");
    page->addChild(*check);
}

OFX::ImageEffect* LiveEditFactory::createInstance(OfxImageEffectHandle handle, OFX::ContextEnum) {
    return new LiveEditEffect(handle);
}

LiveEditFactory::LiveEditFactory() : OFX::PluginFactoryHelper<LiveEditFactory>(kPluginId, 1, 0) {}

}  // namespace liveedit
