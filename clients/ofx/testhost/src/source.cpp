#include "source.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace th {

namespace {
const size_t kCacheLimit = size_t(768) << 20;  // bytes of scaled pictures kept

std::string frameFileName(const std::string &pattern, int frame) {
  size_t a = pattern.find('#');
  if (a == std::string::npos) return pattern;
  size_t b = a;
  while (b < pattern.size() && pattern[b] == '#') b++;
  std::string num = std::to_string(std::abs(frame));
  while (num.size() < b - a) num = "0" + num;
  if (frame < 0) num = "-" + num;
  return pattern.substr(0, a) + num + pattern.substr(b);
}
}  // namespace

SourceSpec SourceSpec::fromJson(const Json &j) {
  SourceSpec s;
  s.width = int(j.integer("width", s.width));
  s.height = int(j.integer("height", s.height));
  s.depth = depthFromName(j.str("depth", "byte"));
  s.first = int(j.integer("first", s.first));
  s.last = int(j.integer("last", s.last));
  s.frameRate = j.num("frame_rate", s.frameRate);
  s.pixelAspect = j.num("pixel_aspect", s.pixelAspect);
  s.pattern = j.str("pattern", s.pattern);
  s.seed = uint64_t(j.integer("seed", 0));
  s.dir = j.str("dir", "");
  s.files = j.str("files", s.files);
  s.premultiplied = j.boolean("premultiplied", false);
  if (s.width < 1 || s.height < 1 || s.width > 16384 || s.height > 16384)
    throw std::runtime_error("width and height must be 1..16384");
  if (s.last < s.first) throw std::runtime_error("last must be >= first");
  if (!(s.frameRate > 0)) throw std::runtime_error("frame_rate must be > 0");
  if (!(s.pixelAspect > 0)) throw std::runtime_error("pixel_aspect must be > 0");
  if (s.dir.empty() && s.pattern != "noise" && s.pattern != "gradient" && s.pattern != "solid")
    throw std::runtime_error("pattern must be noise, gradient or solid");
  return s;
}

Json SourceSpec::toJson() const {
  Json j = Json::object();
  j.set("width", width).set("height", height).set("depth", depthShortName(depth));
  j.set("first", first).set("last", last).set("frame_rate", frameRate).set("pixel_aspect", pixelAspect);
  if (dir.empty()) j.set("pattern", pattern).set("seed", (long long)seed);
  else j.set("dir", dir).set("files", files);
  j.set("premultiplied", premultiplied);
  return j;
}

void Source::configure(const SourceSpec &spec) {
  std::lock_guard<std::mutex> lock(mutex_);
  spec_ = spec;
  generation_++;
  seedOverride_.clear();
  version_.clear();
  full_.clear();
  cache_.clear();
  lru_.clear();
  cachedBytes_ = 0;
}

SourceSpec Source::spec() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return spec_;
}

void Source::scaledSize(double sx, double sy, int &w, int &h) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // canonical RoD is (0, 0, width * PAR, height); pixels at scale s: canonical * s / PAR
  w = std::max(1, int(std::ceil(spec_.width * sx - 1e-9)));
  h = std::max(1, int(std::ceil(spec_.height * sy - 1e-9)));
}

std::string Source::uid(int frame) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto s = seedOverride_.find(frame);
  auto v = version_.find(frame);
  return "g" + std::to_string(generation_) + "-f" + std::to_string(frame) + "-s" +
         std::to_string(s == seedOverride_.end() ? spec_.seed : s->second) + "-v" +
         std::to_string(v == version_.end() ? 0 : v->second);
}

void Source::changeFrame(int frame, uint64_t seed, bool hasSeed) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (frame < spec_.first || frame > spec_.last) throw std::runtime_error("frame outside the source range");
  if (hasSeed) seedOverride_[frame] = seed;
  version_[frame]++;
  full_.erase(frame);
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (std::get<0>(it->first) == frame) {
      cachedBytes_ -= it->second->bytes();
      lru_.remove(it->first);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

void Source::make(int frame, uint64_t seed, Picture &out) const {
  const int W = spec_.width, H = spec_.height;
  out.allocate(W, H, 4, spec_.depth);
  const uint64_t base = mix64(seed * 0x100000001B3ull ^ mix64(uint64_t(int64_t(frame))));
  if (spec_.pattern == "noise") {
    for (int y = 0; y < H; y++) {
      unsigned char *row = out.data.data() + size_t(y) * out.rowBytes();
      for (int x = 0; x < W; x++) {
        uint64_t h = mix64(base ^ (uint64_t(y) << 32 | uint64_t(x)));
        if (spec_.depth == Depth::Byte) {
          for (int c = 0; c < 4; c++) row[x * 4 + c] = (unsigned char)(h >> (8 * c));
        } else if (spec_.depth == Depth::Short) {
          for (int c = 0; c < 4; c++) {
            uint16_t v = (uint16_t)(h >> (16 * c));
            std::memcpy(row + (x * 4 + c) * 2, &v, 2);
          }
        } else {
          for (int c = 0; c < 4; c++) {
            float v = float((h >> (16 * c)) & 0xFFFF) / 65535.0f;
            std::memcpy(row + (x * 4 + c) * 4, &v, 4);
          }
        }
      }
    }
  } else if (spec_.pattern == "gradient") {
    float b = float(base % 1024) / 1023.0f;
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        out.put(x, y, 0, W > 1 ? float(x) / float(W - 1) : 0.f);
        out.put(x, y, 1, H > 1 ? float(y) / float(H - 1) : 0.f);
        out.put(x, y, 2, b);
        out.put(x, y, 3, 1.0f);
      }
  } else {  // solid
    float v[4];
    for (int c = 0; c < 4; c++) v[c] = float((base >> (16 * c)) & 0xFFFF) / 65535.0f;
    v[3] = 1.0f;
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int c = 0; c < 4; c++) out.put(x, y, c, v[c]);
  }
}

bool Source::readFile(int frame, Picture &out, std::string *reason) const {
  std::string path = spec_.dir + "/" + frameFileName(spec_.files, frame);
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (reason) *reason = "cannot open " + path;
    return false;
  }
  out.allocate(spec_.width, spec_.height, 4, spec_.depth);
  f.read(reinterpret_cast<char *>(out.data.data()), std::streamsize(out.bytes()));
  if (size_t(f.gcount()) != out.bytes()) {
    if (reason) *reason = path + " holds fewer than " + std::to_string(out.bytes()) + " bytes";
    return false;
  }
  return true;
}

std::shared_ptr<const Picture> Source::fullFrame(int frame, std::string *reason) {
  auto it = full_.find(frame);
  if (it != full_.end()) return it->second;
  auto p = std::make_shared<Picture>();
  if (!spec_.dir.empty()) {
    if (!readFile(frame, *p, reason)) return nullptr;
  } else {
    auto s = seedOverride_.find(frame);
    make(frame, s == seedOverride_.end() ? spec_.seed : s->second, *p);
  }
  // full-resolution frames are only kept while small; scaled copies live in the LRU cache
  if (p->bytes() <= (size_t(64) << 20) && full_.size() < 256) full_[frame] = p;
  return p;
}

void Source::remember(const std::tuple<int, double, double, int, int> &key, std::shared_ptr<const Picture> p) {
  cache_[key] = p;
  lru_.push_back(key);
  cachedBytes_ += p->bytes();
  while (cachedBytes_ > kCacheLimit && lru_.size() > 1) {
    auto old = lru_.front();
    lru_.pop_front();
    auto it = cache_.find(old);
    if (it != cache_.end()) {
      cachedBytes_ -= it->second->bytes();
      cache_.erase(it);
    }
  }
}

std::shared_ptr<const Picture> Source::picture(int frame, double sx, double sy, Depth depth, int channels,
                                               std::string *uid, std::string *reason) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (frame < spec_.first || frame > spec_.last) {
    if (reason)
      *reason = "frame " + std::to_string(frame) + " is outside the source range " + std::to_string(spec_.first) +
                ".." + std::to_string(spec_.last);
    return nullptr;
  }
  auto key = std::make_tuple(frame, sx, sy, int(depth), channels);
  auto hit = cache_.find(key);
  std::shared_ptr<const Picture> result;
  if (hit != cache_.end()) {
    result = hit->second;
    lru_.remove(key);
    lru_.push_back(key);
  } else {
    auto full = fullFrame(frame, reason);
    if (!full) return nullptr;
    const int W = spec_.width, H = spec_.height;
    int w = std::max(1, int(std::ceil(W * sx - 1e-9)));
    int h = std::max(1, int(std::ceil(H * sy - 1e-9)));
    if (w == W && h == H && depth == full->depth && channels == 4) {
      result = full;
    } else {
      auto p = std::make_shared<Picture>();
      p->allocate(w, h, channels, depth);
      const size_t inPix = size_t(4 * int(full->depth));
      const size_t outPix = size_t(channels * int(depth));
      for (int y = 0; y < h; y++) {
        // nearest full-resolution pixel to the centre of the scaled pixel
        int fy = std::min(H - 1, int(std::floor((y + 0.5) / sy)));
        const unsigned char *inRow = full->data.data() + size_t(fy) * full->rowBytes();
        unsigned char *outRow = p->data.data() + size_t(y) * p->rowBytes();
        for (int x = 0; x < w; x++) {
          int fx = std::min(W - 1, int(std::floor((x + 0.5) / sx)));
          const unsigned char *in = inRow + fx * inPix;
          unsigned char *out = outRow + x * outPix;
          if (depth == full->depth && channels == 4) {
            std::memcpy(out, in, inPix);
          } else if (channels == 4) {
            for (int c = 0; c < 4; c++)
              fromUnit(out + c * int(depth), depth, toUnit(in + c * int(full->depth), full->depth));
          } else {  // alpha only
            fromUnit(out, depth, toUnit(in + 3 * int(full->depth), full->depth));
          }
        }
      }
      result = p;
    }
    remember(key, result);
  }
  if (uid) {
    auto s = seedOverride_.find(frame);
    auto v = version_.find(frame);
    *uid = "g" + std::to_string(generation_) + "-f" + std::to_string(frame) + "-s" +
           std::to_string(s == seedOverride_.end() ? spec_.seed : s->second) + "-v" +
           std::to_string(v == version_.end() ? 0 : v->second);
  }
  return result;
}

}  // namespace th
