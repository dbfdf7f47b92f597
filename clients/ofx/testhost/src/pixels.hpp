// Pictures the test host hands to plugins and gets back: RGBA or Alpha, 8-bit, 16-bit or float,
// rows stored bottom row first (OFX pixel order: row 0 is y == bounds.y1).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace th {

enum class Depth { Byte = 1, Short = 2, Float = 4 };  // value = bytes per component

const char *depthOfxName(Depth d);                 // kOfxBitDepthByte, ...
const char *depthShortName(Depth d);               // "byte", "short", "float"
Depth depthFromName(const std::string &name);      // accepts both spellings; throws otherwise
bool depthFromOfxName(const std::string &name, Depth &out);

struct Picture {
  int width = 0, height = 0, channels = 4;
  Depth depth = Depth::Byte;
  std::vector<unsigned char> data;  // tightly packed
  int rowBytes() const { return width * channels * int(depth); }
  size_t bytes() const { return size_t(rowBytes()) * size_t(height); }
  void allocate(int w, int h, int ch, Depth d) {
    width = w;
    height = h;
    channels = ch;
    depth = d;
    data.assign(bytes(), 0);
  }
  // component c of pixel (x, y) as a float in [0, 1] for integer depths, raw for float
  float get(int x, int y, int c) const;
  void put(int x, int y, int c, float v);
};

// one component converted between depths the way hosts do (byte<->short by 257, integer<->float
// by the maximum, float->integer clamped and rounded)
float toUnit(const unsigned char *p, Depth d);
void fromUnit(unsigned char *p, Depth d, float v);

// 64-bit mixing function used for the deterministic test patterns
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace th
