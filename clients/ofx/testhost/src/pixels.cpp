#include "pixels.hpp"

#include <cmath>
#include <stdexcept>

#include "ofxImageEffect.h"

namespace th {

const char *depthOfxName(Depth d) {
  switch (d) {
    case Depth::Byte: return kOfxBitDepthByte;
    case Depth::Short: return kOfxBitDepthShort;
    case Depth::Float: return kOfxBitDepthFloat;
  }
  return kOfxBitDepthNone;
}

const char *depthShortName(Depth d) {
  switch (d) {
    case Depth::Byte: return "byte";
    case Depth::Short: return "short";
    case Depth::Float: return "float";
  }
  return "none";
}

bool depthFromOfxName(const std::string &name, Depth &out) {
  if (name == kOfxBitDepthByte) out = Depth::Byte;
  else if (name == kOfxBitDepthShort) out = Depth::Short;
  else if (name == kOfxBitDepthFloat) out = Depth::Float;
  else return false;
  return true;
}

Depth depthFromName(const std::string &name) {
  Depth d;
  if (name == "byte" || name == "8") return Depth::Byte;
  if (name == "short" || name == "16") return Depth::Short;
  if (name == "float" || name == "32") return Depth::Float;
  if (depthFromOfxName(name, d)) return d;
  throw std::runtime_error("unknown depth \"" + name + "\" (byte, short or float)");
}

float toUnit(const unsigned char *p, Depth d) {
  switch (d) {
    case Depth::Byte: return float(*p) / 255.0f;
    case Depth::Short: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return float(v) / 65535.0f;
    }
    case Depth::Float: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
  }
  return 0;
}

void fromUnit(unsigned char *p, Depth d, float v) {
  switch (d) {
    case Depth::Byte: {
      float c = std::isnan(v) ? 0.f : std::fmin(1.f, std::fmax(0.f, v));
      *p = (unsigned char)std::lround(c * 255.0f);
      break;
    }
    case Depth::Short: {
      float c = std::isnan(v) ? 0.f : std::fmin(1.f, std::fmax(0.f, v));
      uint16_t s = (uint16_t)std::lround(c * 65535.0f);
      std::memcpy(p, &s, 2);
      break;
    }
    case Depth::Float: std::memcpy(p, &v, 4); break;
  }
}

float Picture::get(int x, int y, int c) const {
  const unsigned char *p = data.data() + size_t(y) * rowBytes() + size_t(x * channels + c) * int(depth);
  return toUnit(p, depth);
}

void Picture::put(int x, int y, int c, float v) {
  unsigned char *p = data.data() + size_t(y) * rowBytes() + size_t(x * channels + c) * int(depth);
  fromUnit(p, depth, v);
}

}  // namespace th
