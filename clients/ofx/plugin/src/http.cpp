#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#ifdef _WIN32
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <winsock2.h>
#  include <ws2tcpip.h>
using SocketHandle = SOCKET;
static const SocketHandle kNoSocket = INVALID_SOCKET;
#else
#  include <arpa/inet.h>
#  include <fcntl.h>
#  include <netinet/in.h>
#  include <netinet/tcp.h>
#  include <poll.h>
#  include <sys/socket.h>
#  include <unistd.h>
#  ifdef __linux__
#    include <sys/mman.h>
#  endif
using SocketHandle = int;
static const SocketHandle kNoSocket = -1;
#endif

#ifndef MSG_NOSIGNAL
#  define MSG_NOSIGNAL 0  // macOS: SO_NOSIGPIPE on the socket instead; Windows has no SIGPIPE
#endif

namespace liveedit {

namespace {

int lastError() {
#ifdef _WIN32
    return WSAGetLastError();
#else
    return errno;
#endif
}

std::string errorText(int code) {
#ifdef _WIN32
    return "Winsock error " + std::to_string(code);
#else
    return std::strerror(code);
#endif
}

bool wouldBlock(int code) {
#ifdef _WIN32
    return code == WSAEWOULDBLOCK || code == WSAEINPROGRESS;
#else
    return code == EAGAIN || code == EWOULDBLOCK || code == EINPROGRESS || code == EINTR;
#endif
}

void startSockets() {
#ifdef _WIN32
    static std::once_flag once;
    std::call_once(once, [] {
        WSADATA data;
        WSAStartup(MAKEWORD(2, 2), &data);
    });
#endif
}

class Socket {
public:
    explicit Socket(SocketHandle s) : s_(s) {}
    ~Socket() {
        if (s_ == kNoSocket) return;
#ifdef _WIN32
        closesocket(s_);
#else
        ::close(s_);
#endif
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    SocketHandle get() const { return s_; }
    SocketHandle release() {
        SocketHandle s = s_;
        s_ = kNoSocket;
        return s;
    }

private:
    SocketHandle s_;
};

// Waits until the socket is readable/writable; false on timeout.
bool waitFor(SocketHandle s, bool write, int timeoutMs) {
#ifdef _WIN32
    WSAPOLLFD p{};
    p.fd = s;
    p.events = write ? POLLWRNORM : POLLRDNORM;
    int n = WSAPoll(&p, 1, timeoutMs);
#else
    pollfd p{};
    p.fd = s;
    p.events = short(write ? POLLOUT : POLLIN);
    int n;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (true) {
        int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
        n = ::poll(&p, 1, std::max(left, 0));
        if (n < 0 && errno == EINTR) continue;
        break;
    }
#endif
    if (n < 0) throw SidecarError("waiting on the sidecar's socket failed: " + errorText(lastError()));
    return n > 0;
}

void setNonBlocking(SocketHandle s) {
#ifdef _WIN32
    u_long on = 1;
    ioctlsocket(s, FIONBIO, &on);
#else
    int flags = fcntl(s, F_GETFL, 0);
    fcntl(s, F_SETFL, flags | O_NONBLOCK);
#endif
}

SocketHandle connectTo(const Endpoint& endpoint, const Timeouts& timeouts) {
    startSockets();
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(uint16_t(endpoint.port));
    if (endpoint.port <= 0 || endpoint.port > 65535 || inet_pton(AF_INET, endpoint.host.c_str(), &address.sin_addr) != 1)
        throw SidecarError("the sidecar's address " + endpoint.describe() + " is not a loopback IPv4 address and port");
    SocketHandle s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (s == kNoSocket) throw SidecarError("cannot open a socket: " + errorText(lastError()));
    Socket guard(s);
#ifndef _WIN32
    fcntl(s, F_SETFD, FD_CLOEXEC);
#endif
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    int nodelay = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&nodelay), sizeof nodelay);
    setNonBlocking(s);
    if (::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        int code = lastError();
        if (!wouldBlock(code))
            throw SidecarError("cannot connect to the LiveEdit sidecar at " + endpoint.describe() + " (" +
                               errorText(code) + "); start it with `liveedit serve`");
        if (!waitFor(s, true, timeouts.connectMs))
            throw SidecarError("the LiveEdit sidecar at " + endpoint.describe() + " did not accept a connection within " +
                               std::to_string(timeouts.connectMs) + " ms");
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&err), &len);
        if (err != 0)
            throw SidecarError("cannot connect to the LiveEdit sidecar at " + endpoint.describe() + " (" +
                               errorText(err) + "); start it with `liveedit serve`");
    }
    return guard.release();
}

void sendAll(SocketHandle s, const void* data, size_t size, const Timeouts& timeouts) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        int chunk = int(std::min<size_t>(size, 1 << 30));
        auto n = ::send(s, p, chunk, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            size -= size_t(n);
            continue;
        }
        int code = lastError();
        if (n < 0 && wouldBlock(code)) {
            if (!waitFor(s, true, timeouts.ioMs))
                throw SidecarError("the sidecar stopped taking data for " + std::to_string(timeouts.ioMs) + " ms");
            continue;
        }
        throw SidecarError("the connection to the sidecar broke while sending (" + errorText(code) + ")");
    }
}

// Receives up to `size` bytes; 0 only at the end of the stream.
size_t receiveSome(SocketHandle s, void* data, size_t size, const Timeouts& timeouts) {
    while (true) {
        int chunk = int(std::min<size_t>(size, 1 << 30));
        auto n = ::recv(s, static_cast<char*>(data), chunk, 0);
        if (n >= 0) return size_t(n);
        int code = lastError();
        if (wouldBlock(code)) {
            if (!waitFor(s, false, timeouts.ioMs))
                throw SidecarError("the sidecar did not answer for " + std::to_string(timeouts.ioMs) +
                                   " ms (is it stalled or overloaded?)");
            continue;
        }
        throw SidecarError("the connection to the sidecar broke while receiving (" + errorText(code) + ")");
    }
}

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

HttpResponse httpRequest(const Endpoint& endpoint, const char* method, const std::string& path,
                         const std::string& contentType, const std::vector<Slice>& body, const Timeouts& timeouts,
                         size_t maxBodyBytes) {
    SocketHandle raw = connectTo(endpoint, timeouts);
    Socket socket(raw);
    size_t length = 0;
    for (const Slice& slice : body) length += slice.size;
    std::string head = std::string(method) + " " + path + " HTTP/1.1\r\nHost: " + endpoint.describe() +
                       "\r\nAuthorization: Bearer " + endpoint.token + "\r\nConnection: close\r\n";
    if (std::strcmp(method, "GET") != 0) {
        head += "Content-Type: " + contentType + "\r\nContent-Length: " + std::to_string(length) + "\r\n";
    }
    head += "\r\n";
    sendAll(raw, head.data(), head.size(), timeouts);
    for (const Slice& slice : body) sendAll(raw, slice.data, slice.size, timeouts);

    // The head of the answer, up to the blank line.
    std::vector<uint8_t> buffer(16384);
    size_t have = 0, headEnd = 0;
    while (true) {
        if (have == buffer.size()) {
            if (buffer.size() >= (1u << 16)) throw SidecarError("the sidecar's answer has an oversized header");
            buffer.resize(buffer.size() * 2);
        }
        size_t n = receiveSome(raw, buffer.data() + have, buffer.size() - have, timeouts);
        if (n == 0) throw SidecarError("the sidecar closed the connection without answering");
        size_t searchFrom = have >= 3 ? have - 3 : 0;
        have += n;
        const char* text = reinterpret_cast<const char*>(buffer.data());
        const char* found = nullptr;
        for (size_t i = searchFrom; i + 4 <= have; ++i) {
            if (std::memcmp(text + i, "\r\n\r\n", 4) == 0) {
                found = text + i;
                break;
            }
        }
        if (found) {
            headEnd = size_t(found - text) + 4;
            break;
        }
    }
    std::string headText(reinterpret_cast<const char*>(buffer.data()), headEnd);
    HttpResponse response;
    if (headText.compare(0, 5, "HTTP/") != 0 || headText.size() < 12)
        throw SidecarError("the program at " + endpoint.describe() + " does not answer like the LiveEdit sidecar");
    response.status = std::atoi(headText.c_str() + headText.find(' ') + 1);
    long long contentLength = -1;
    bool chunked = false;
    size_t lineStart = headText.find("\r\n") + 2;
    while (lineStart < headText.size()) {
        size_t lineEnd = headText.find("\r\n", lineStart);
        if (lineEnd == std::string::npos || lineEnd == lineStart) break;
        std::string line = headText.substr(lineStart, lineEnd - lineStart);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = lower(line.substr(0, colon));
            size_t v = line.find_first_not_of(' ', colon + 1);
            std::string value = v == std::string::npos ? "" : line.substr(v);
            if (name == "content-length") contentLength = std::atoll(value.c_str());
            else if (name == "content-type") response.contentType = lower(value.substr(0, value.find(';')));
            else if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) chunked = true;
        }
        lineStart = lineEnd + 2;
    }
    if (chunked) throw SidecarError("the sidecar sent a chunked answer, which this plug-in does not read");
    if (contentLength < 0) {  // read to the end of the stream
        std::vector<uint8_t> body(buffer.begin() + long(headEnd), buffer.begin() + long(have));
        std::vector<uint8_t> more(65536);
        while (size_t n = receiveSome(raw, more.data(), more.size(), timeouts)) {
            if (body.size() + n > maxBodyBytes) throw SidecarError("the sidecar's answer is too large");
            body.insert(body.end(), more.begin(), more.begin() + long(n));
        }
        response.size = body.size();
        response.body = allocateBody(response.size + 1);
        if (response.size) std::memcpy(response.body.get(), body.data(), response.size);
        return response;
    }
    if (size_t(contentLength) > maxBodyBytes) throw SidecarError("the sidecar's answer is too large");
    response.size = size_t(contentLength);
    response.body = allocateBody(response.size + 1);
    size_t got = std::min(response.size, have - headEnd);
    if (got) std::memcpy(response.body.get(), buffer.data() + headEnd, got);
    while (got < response.size) {
        size_t n = receiveSome(raw, response.body.get() + got, response.size - got, timeouts);
        if (n == 0) throw SidecarError("the sidecar closed the connection in the middle of its answer");
        got += n;
    }
    return response;
}

void BodyDeleter::operator()(uint8_t* p) const noexcept { std::free(p); }

BodyBuffer allocateBody(size_t size) {
#ifdef __linux__
    // A 1080p float frame is 25 MB: filling fresh memory 4 KB page by page cost the plug-in
    // ~15 ms of page faults per frame on a 2-CPU machine. Huge pages (2 MB, as numpy asks for
    // its large arrays) make that a dozen faults. Only advice: without them, ordinary pages.
    constexpr size_t kHuge = size_t(2) << 20;
    if (size >= 4 * kHuge) {
        const size_t rounded = (size + kHuge - 1) / kHuge * kHuge;
        if (void* p = std::aligned_alloc(kHuge, rounded)) {
            madvise(p, rounded, MADV_HUGEPAGE);
            return BodyBuffer(static_cast<uint8_t*>(p));
        }
    }
#endif
    void* p = std::malloc(size ? size : 1);
    if (!p) throw SidecarError("not enough memory for the sidecar's answer (" + std::to_string(size) + " bytes)");
    return BodyBuffer(static_cast<uint8_t*>(p));
}

}  // namespace liveedit
