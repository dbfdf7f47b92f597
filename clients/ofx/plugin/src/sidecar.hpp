// The plug-in's side of the sidecar's take routes (sidecar/api/takes.py): where the sidecar
// listens and its token (the per-user config folder, as clients/transport.py lays them out), and the
// three calls a render makes: the take layout, "this frame, please" and "here are the sources".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "frame_hash.hpp"
#include "http.hpp"
#include "json.hpp"

namespace liveedit {

// The per-user config folder: LIVEEDIT_CONFIG_DIR, else ~/.config/liveedit (XDG_CONFIG_HOME),
// ~/Library/Application Support/LiveEdit, %APPDATA%\LiveEdit.
std::string configDir();

// Port from bridge.json (LIVEEDIT_OFX_PORT overrides it), token from the token file. Throws
// SidecarError saying what is missing and what to do.
Endpoint locateSidecar();

struct TakeSettings {
    std::string instruction;
    int seed = 0;
    std::string quality = "full";  // "full" | "preview"
    bool maskCache = false;
    std::string colour = "display";  // "display" | "linear"
    std::string json() const;
};

struct PixelFormat {
    std::string depth;  // "u8" | "u16" | "f32"
    int channels = 4;
    size_t componentBytes() const { return depth == "u8" ? 1 : depth == "u16" ? 2 : 4; }
    size_t pixelBytes() const { return componentBytes() * size_t(channels); }
};

struct Layout {  // the editor's chunks: the first holds `first` frames, every later one `chunk`
    int first = 9;
    int chunk = 12;
    // The last take frame of the chunk holding take frame i (if the clip goes on).
    int64_t chunkEnd(int64_t i) const { return i < first ? first - 1 : first + ((i - first) / chunk + 1) * chunk - 1; }
};

struct TakeStatus {
    int64_t framesReady = 0;
    int64_t frames = 0;
    bool randomWeights = false;
};

struct FrameAnswer {
    enum class State { Ready, NeedSources, Pending } state = State::Pending;
    std::vector<int64_t> need;  // take frames to upload (NeedSources)
    TakeStatus status;
    // Ready: the window's description and the answer holding the payload.
    Json meta;
    HttpResponse answer;
    size_t payloadOffset = 0;
    const uint8_t* payload() const { return answer.body.get() + payloadOffset; }
    size_t payloadSize() const { return answer.size - payloadOffset; }
};

struct SourceFrame {  // one frame to upload: the same bytes that were hashed
    Hash128 hash;
    int64_t index;  // take frame
    int width, height;
    PixelFormat format;
    bool premultiplied;
    const void* data;  // rows bottom-up, tightly packed: width * height * pixelBytes
};

class SidecarClient {
public:
    SidecarClient(Endpoint endpoint, Timeouts timeouts) : endpoint_(std::move(endpoint)), timeouts_(timeouts) {}

    Json info();  // GET /v1/takes/info
    // alphaFromSource: RGBA whose alpha the plug-in copies from its own source frame (not sent back)
    FrameAnswer requestFrame(const TakeSettings& take, int64_t frame, const std::vector<Hash128>& hashes,
                             const PixelFormat& format, const int window[4], int waitMs, bool alphaFromSource);
    void uploadSources(const TakeSettings& take, const std::vector<SourceFrame>& frames);
    const Endpoint& endpoint() const { return endpoint_; }

private:
    HttpResponse call(const char* method, const std::string& path, const std::string& contentType,
                      const std::vector<Slice>& body, int extraWaitMs = 0);
    Endpoint endpoint_;
    Timeouts timeouts_;
};

// `[u32 little-endian n][n bytes JSON]` + payload: the framing of binary bodies.
std::string frameHeader(const std::string& json);

}  // namespace liveedit
