#include "sidecar.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace liveedit {

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
}

bool readFile(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream text;
    text << in.rdbuf();
    out = text.str();
    return true;
}

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n");
    if (a == std::string::npos) return "";
    size_t b = s.find_last_not_of(" \t\r\n");
    return s.substr(a, b - a + 1);
}

const char kFramed[] = "application/x-liveedit-frame";

std::string errorMessage(const HttpResponse& r) {
    try {
        Json answer = Json::parse(r.text(), r.size);
        const std::string& message = answer["error"]["message"].asString();
        if (!message.empty()) return message;
    } catch (const JsonError&) {
    }
    return "HTTP status " + std::to_string(r.status);
}

TakeStatus parseStatus(const Json& s) {
    TakeStatus status;
    status.framesReady = s["frames_ready"].asInt();
    status.frames = s["frames"].asInt();
    status.randomWeights = s["random_weights"].asBool();
    return status;
}

}  // namespace

std::string configDir() {
    std::string override = env("LIVEEDIT_CONFIG_DIR");
    if (!override.empty()) return override;
#ifdef _WIN32
    std::string appdata = env("APPDATA");
    if (appdata.empty()) appdata = env("USERPROFILE") + "\\AppData\\Roaming";
    return appdata + "\\LiveEdit";
#elif defined(__APPLE__)
    return env("HOME") + "/Library/Application Support/LiveEdit";
#else
    std::string base = env("XDG_CONFIG_HOME");
    if (base.empty()) base = env("HOME") + "/.config";
    return base + "/liveedit";
#endif
}

Endpoint locateSidecar() {
#ifdef _WIN32
    const std::string sep = "\\";
#else
    const std::string sep = "/";
#endif
    std::string dir = configDir();
    Endpoint endpoint;
    std::string port = env("LIVEEDIT_OFX_PORT");
    if (port.empty()) {
        std::string text;
        if (!readFile(dir + sep + "bridge.json", text))
            throw SidecarError("the LiveEdit sidecar is not running for this user (no " + dir + sep +
                               "bridge.json); start it with `liveedit serve`");
        try {
            endpoint.port = int(Json::parse(text)["port"].asInt());
        } catch (const JsonError&) {
            throw SidecarError(dir + sep + "bridge.json is damaged; start `liveedit serve` again to rewrite it");
        }
    } else {
        endpoint.port = std::atoi(port.c_str());
    }
    if (endpoint.port <= 0 || endpoint.port > 65535)
        throw SidecarError("the sidecar's port in " + dir + sep + "bridge.json (or LIVEEDIT_OFX_PORT) is not a port number");
    std::string token;
    if (!readFile(dir + sep + "token", token) || trim(token).empty())
        throw SidecarError("the install token " + dir + sep + "token is missing; start `liveedit serve` once to create it");
    endpoint.token = trim(token);
    for (char c : endpoint.token)
        if (c < 0x21 || c > 0x7e) throw SidecarError("the install token in " + dir + sep + "token is damaged; delete it and restart the sidecar");
    return endpoint;
}

std::string TakeSettings::json() const {
    return "{\"instruction\":" + jsonQuote(instruction) + ",\"seed\":" + std::to_string(seed) +
           ",\"quality\":" + jsonQuote(quality) + ",\"mask_cache\":" + (maskCache ? "true" : "false") +
           ",\"colour\":" + jsonQuote(colour) + "}";
}

std::string frameHeader(const std::string& json) {
    uint32_t n = uint32_t(json.size());
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xFF);
    return out + json;
}

HttpResponse SidecarClient::call(const char* method, const std::string& path, const std::string& contentType,
                                 const std::vector<Slice>& body, int extraWaitMs) {
    Timeouts t = timeouts_;
    t.ioMs += extraWaitMs;  // a long poll legitimately stays quiet this long
    HttpResponse r = httpRequest(endpoint_, method, path, contentType, body, t);
    if (r.status == 401)
        throw SidecarError("the sidecar refused the install token (" + configDir() +
                           "/token); restart the host after the sidecar made a new one", 401);
    if (r.status >= 400) throw SidecarError("the sidecar refused: " + errorMessage(r), r.status);
    return r;
}

Json SidecarClient::info() {
    HttpResponse r = call("GET", "/v1/takes/info", "", {});
    if (r.status != 200) throw SidecarError("unexpected answer to /v1/takes/info: " + std::to_string(r.status));
    return Json::parse(r.text(), r.size);
}

FrameAnswer SidecarClient::requestFrame(const TakeSettings& take, int64_t frame, const std::vector<Hash128>& hashes,
                                        const PixelFormat& format, const int window[4], int waitMs,
                                        bool alphaFromSource) {
    std::string json;
    json.reserve(hashes.size() * 35 + 512);
    json += "{\"take\":" + take.json() + ",\"frame\":" + std::to_string(frame) + ",\"hashes\":[";
    for (size_t i = 0; i < hashes.size(); ++i) {
        if (i) json += ',';
        json += '"';
        json += hashes[i].hex();
        json += '"';
    }
    // alpha copied from the host's own source frame, not sent back (writeWindow)
    json += alphaFromSource ? "],\"alpha\":\"source\"" : "]";
    json += ",\"accept\":[\"rgb\"]";  // 16-bit and float edits as RGB rows (writeWindow)
    json += ",\"format\":{\"depth\":\"" + format.depth + "\",\"channels\":" + std::to_string(format.channels) +
            "},\"window\":[" + std::to_string(window[0]) + "," + std::to_string(window[1]) + "," +
            std::to_string(window[2]) + "," + std::to_string(window[3]) + "],\"wait_ms\":" + std::to_string(waitMs) + "}";
    std::string header = frameHeader(json);
    HttpResponse r = call("POST", "/v1/takes/frame", kFramed, {{header.data(), header.size()}}, waitMs);
    FrameAnswer answer;
    if (r.status == 200) {
        if (r.contentType != kFramed || r.size < 4) throw SidecarError("the sidecar's frame answer is malformed");
        const uint8_t* b = r.body.get();
        uint32_t n = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
        if (size_t(n) + 4 > r.size) throw SidecarError("the sidecar's frame answer is truncated");
        answer.meta = Json::parse(r.text() + 4, n);
        answer.payloadOffset = 4 + size_t(n);
        answer.status = parseStatus(answer.meta["status"]);
        answer.answer = std::move(r);
        answer.state = FrameAnswer::State::Ready;
        return answer;
    }
    if (r.status != 202) throw SidecarError("unexpected answer to a frame request: HTTP " + std::to_string(r.status));
    Json body = Json::parse(r.text(), r.size);
    answer.status = parseStatus(body["status"]);
    for (const Json& i : body["need"].items()) answer.need.push_back(i.asInt(-1));
    answer.state = answer.need.empty() ? FrameAnswer::State::Pending : FrameAnswer::State::NeedSources;
    return answer;
}

void SidecarClient::uploadSources(const TakeSettings& take, const std::vector<SourceFrame>& frames) {
    std::string json = "{\"take\":" + take.json() + ",\"frames\":[";
    std::vector<Slice> slices(1);
    for (size_t i = 0; i < frames.size(); ++i) {
        const SourceFrame& f = frames[i];
        size_t bytes = size_t(f.width) * size_t(f.height) * f.format.pixelBytes();
        if (i) json += ',';
        json += "{\"index\":" + std::to_string(f.index) + ",\"hash\":\"" + f.hash.hex() + "\",\"width\":" +
                std::to_string(f.width) + ",\"height\":" + std::to_string(f.height) + ",\"depth\":\"" +
                f.format.depth + "\",\"channels\":" + std::to_string(f.format.channels) + ",\"premultiplied\":" +
                (f.premultiplied ? "true" : "false") + ",\"bytes\":" + std::to_string(bytes) + "}";
        slices.push_back({f.data, bytes});
    }
    json += "]}";
    std::string header = frameHeader(json);
    slices[0] = {header.data(), header.size()};
    HttpResponse r = call("POST", "/v1/takes/sources", kFramed, slices);
    if (r.status != 200) throw SidecarError("unexpected answer to a source upload: HTTP " + std::to_string(r.status));
}

}  // namespace liveedit
