// The source clip the host hands to plugins: frames made deterministically from frame number and
// seed, or read from a folder of raw frames. Thread-safe: plugins fetch frames from any thread.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "json.hpp"
#include "pixels.hpp"

namespace th {

struct SourceSpec {
  int width = 64, height = 36;
  Depth depth = Depth::Byte;
  int first = 0, last = 9;
  double frameRate = 25.0;
  double pixelAspect = 1.0;
  std::string pattern = "noise";  // noise | gradient | solid
  uint64_t seed = 0;
  std::string dir;                  // when set: frames are files in dir
  std::string files = "######.rgba";  // file name, '#' run = zero-padded frame number
  bool premultiplied = false;

  static SourceSpec fromJson(const Json &j);
  Json toJson() const;
};

class Source {
 public:
  void configure(const SourceSpec &spec);
  SourceSpec spec() const;

  // pixel size of the picture at a render scale (OFX: canonical width * scale / PAR)
  void scaledSize(double sx, double sy, int &w, int &h) const;

  // The picture as a plugin sees it at the given scale, depth and channel count (4 = RGBA,
  // 1 = Alpha); null when the frame is outside the range or its file cannot be read (reason set).
  std::shared_ptr<const Picture> picture(int frame, double sx, double sy, Depth depth, int channels,
                                         std::string *uid, std::string *reason);

  // A new look for one frame: pattern frames take a new seed, file frames are read again.
  void changeFrame(int frame, uint64_t seed, bool hasSeed);

  std::string uid(int frame) const;

 private:
  std::shared_ptr<const Picture> fullFrame(int frame, std::string *reason);  // lock held
  void make(int frame, uint64_t seed, Picture &out) const;
  bool readFile(int frame, Picture &out, std::string *reason) const;
  void remember(const std::tuple<int, double, double, int, int> &key, std::shared_ptr<const Picture> p);

  mutable std::mutex mutex_;
  SourceSpec spec_;
  uint64_t generation_ = 0;  // bumped by configure
  std::map<int, uint64_t> seedOverride_;
  std::map<int, int> version_;
  std::map<int, std::shared_ptr<const Picture>> full_;
  // scaled/converted pictures, most recently used last
  std::map<std::tuple<int, double, double, int, int>, std::shared_ptr<const Picture>> cache_;
  std::list<std::tuple<int, double, double, int, int>> lru_;
  size_t cachedBytes_ = 0;
};

}  // namespace th
