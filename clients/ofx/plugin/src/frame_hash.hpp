// A fast 128-bit content hash of a source frame: what the sidecar keys takes by (it chains the
// hashes of every frame from the edit start, sidecar/takes/service.py). Not cryptographic; built so that
// a change confined to one 8-byte word of a frame always changes the hash (every step of a lane
// is a bijection of its state and of the word it takes), and any other change does with
// overwhelming probability. Four independent lanes keep a core's multipliers busy: several GB/s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace liveedit {

struct Hash128 {
    uint64_t hi = 0, lo = 0;
    std::string hex() const;  // 32 lower-case hex digits
    bool operator==(const Hash128& o) const { return hi == o.hi && lo == o.lo; }
};

class FrameHasher {
public:
    FrameHasher();
    void update(const void* data, size_t size);
    void updateU64(uint64_t value) { update(&value, sizeof value); }
    Hash128 finish();  // once

private:
    void block(const unsigned char* p);
    uint64_t lanes_[4];
    unsigned char buffer_[32];
    size_t buffered_ = 0;
    uint64_t total_ = 0;
};

}  // namespace liveedit
