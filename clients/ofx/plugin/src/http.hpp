// A minimal HTTP/1.1 client over loopback TCP for talking to the sidecar's bridge from inside an
// editor's process: one connection per request, a timeout on the connect and on every wait for the
// socket, no signals (SIGPIPE) and no exceptions other than SidecarError. POSIX sockets and Winsock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace liveedit {

// Every failure to reach or understand the sidecar. `status` is the HTTP status when there was one.
class SidecarError : public std::runtime_error {
public:
    explicit SidecarError(const std::string& message, int status = 0)
        : std::runtime_error(message), status(status) {}
    int status;
};

struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string token;
    std::string describe() const { return host + ":" + std::to_string(port); }
};

struct Timeouts {
    int connectMs = 2000;  // loopback connects at once; longer means nothing listens properly
    int ioMs = 10000;      // the longest a single send or receive may stall
};

struct Slice {  // a piece of a request body, sent without copying
    const void* data;
    size_t size;
};

struct BodyDeleter {
    void operator()(uint8_t* p) const noexcept;
};
using BodyBuffer = std::unique_ptr<uint8_t[], BodyDeleter>;

// An answer's buffer, not zero-filled (answers are megabytes); on Linux, buffers of megabytes
// are backed by huge pages where the system allows it (see http.cpp).
BodyBuffer allocateBody(size_t size);

struct HttpResponse {
    int status = 0;
    std::string contentType;
    BodyBuffer body;
    size_t size = 0;
    const char* text() const { return reinterpret_cast<const char*>(body.get()); }
};

// Sends one request and reads the whole answer. Throws SidecarError on any failure (refused,
// reset, timed out, malformed); HTTP error statuses are returned, not thrown.
HttpResponse httpRequest(const Endpoint& endpoint, const char* method, const std::string& path,
                         const std::string& contentType, const std::vector<Slice>& body, const Timeouts& timeouts,
                         size_t maxBodyBytes = size_t(1) << 31);

}  // namespace liveedit
