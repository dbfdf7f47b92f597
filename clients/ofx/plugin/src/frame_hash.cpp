#include "frame_hash.hpp"

#include <cstring>

namespace liveedit {

namespace {
constexpr uint64_t kMul[4] = {0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
                              0xD6E8FEB86659FD93ull};  // odd: multiplying by them is invertible mod 2^64

inline uint64_t load64(const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// A lane step: xor the word in, multiply by an odd constant, fold the high bits down. Each of
// the three is a bijection, so for a fixed state the word determines the new state and vice versa.
inline uint64_t step(uint64_t state, uint64_t word, uint64_t mul) {
    state = (state ^ word) * mul;
    return state ^ (state >> 29);
}

// A bijective finaliser (xor-shift-multiply rounds).
inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}
}  // namespace

FrameHasher::FrameHasher() {
    lanes_[0] = 0x6C69766565646974ull;  // distinct starting states
    lanes_[1] = 0x6F66782D706C7567ull;
    lanes_[2] = 0x7461206B65792031ull;
    lanes_[3] = 0x0123456789ABCDEFull;
}

void FrameHasher::block(const unsigned char* p) {
    for (int i = 0; i < 4; ++i) lanes_[i] = step(lanes_[i], load64(p + 8 * i), kMul[i]);
}

void FrameHasher::update(const void* data, size_t size) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    total_ += size;
    if (buffered_) {
        size_t take = sizeof buffer_ - buffered_;
        if (take > size) take = size;
        std::memcpy(buffer_ + buffered_, p, take);
        buffered_ += take;
        p += take;
        size -= take;
        if (buffered_ < sizeof buffer_) return;
        block(buffer_);
        buffered_ = 0;
    }
    uint64_t a = lanes_[0], b = lanes_[1], c = lanes_[2], d = lanes_[3];
    while (size >= 32) {  // the hot loop: four independent chains
        a = step(a, load64(p), kMul[0]);
        b = step(b, load64(p + 8), kMul[1]);
        c = step(c, load64(p + 16), kMul[2]);
        d = step(d, load64(p + 24), kMul[3]);
        p += 32;
        size -= 32;
    }
    lanes_[0] = a, lanes_[1] = b, lanes_[2] = c, lanes_[3] = d;
    if (size) {
        std::memcpy(buffer_, p, size);
        buffered_ = size;
    }
}

Hash128 FrameHasher::finish() {
    if (buffered_) {  // the tail, zero-padded; the total length below tells padding from zeros
        std::memset(buffer_ + buffered_, 0, sizeof buffer_ - buffered_);
        block(buffer_);
        buffered_ = 0;
    }
    Hash128 h;
    // Each output half takes two lanes; a change in one lane alone always changes its half.
    h.hi = mix(lanes_[0] ^ mix(lanes_[1] ^ total_));
    h.lo = mix(lanes_[2] ^ mix(lanes_[3] ^ ~total_));
    return h;
}

std::string Hash128::hex() const {
    static const char* digits = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[15 - i] = digits[(hi >> (4 * i)) & 15];
        out[31 - i] = digits[(lo >> (4 * i)) & 15];
    }
    return out;
}

}  // namespace liveedit
