// Host images <-> the bytes the sidecar takes and returns. The plug-in does no picture arithmetic
// of its own: a source frame goes out exactly as the host holds it (its region of definition,
// rows bottom-up, tightly packed), and an edited window comes back at the host's depth, either
// raw or as 8-bit codes with the sidecar's 256-entry table of host values (sidecar/takes/pixels.py).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ofxsImageEffect.h"

#include "frame_hash.hpp"
#include "json.hpp"
#include "sidecar.hpp"

namespace liveedit {

// What a source frame is, as far as the take is concerned.
struct SourceInfo {
    Hash128 hash;
    OfxRectI rod{0, 0, 0, 0};  // the frame, in pixels at the render scale
    PixelFormat format;
    bool premultiplied = false;
    bool opaque = true;  // RGB, or every alpha at its maximum (then the edit's alpha needs no source)
    int width() const { return rod.x2 - rod.x1; }
    int height() const { return rod.y2 - rod.y1; }
};

// Format of an image (throws std::runtime_error for depths/components the plug-in does not take).
PixelFormat formatOf(const OFX::ImageBase& image);

// The frame of an image: its region of definition, or its bounds when the host gives none.
OfxRectI frameOf(const OFX::ImageBase& image);

// Hashes an image's frame (streaming, row by row; no copy of the whole frame).
SourceInfo describeSource(const OFX::Image& image);

// An image's frame as one tightly packed, bottom-up block: pointing into the image when it is
// laid out that way already, else copied (outside the image's bounds: transparent black).
class PackedFrame {
public:
    explicit PackedFrame(std::unique_ptr<OFX::Image> image);
    const SourceInfo& info() const { return info_; }
    const void* data() const { return data_; }

private:
    std::unique_ptr<OFX::Image> image_;
    std::vector<uint8_t> copy_;
    const void* data_ = nullptr;
    SourceInfo info_;
};

// Writes a ready answer into `window` (pixels, inside dst's bounds) of dst. Checks every size
// against the answer before touching the image; throws std::runtime_error if they disagree.
// `source` is the source frame the edit was made from: alpha "source" answers take its alpha
// (outside its bounds: 0). Rows are shared out over the host's render threads.
void writeWindow(OFX::Image& dst, const OfxRectI& window, const Json& meta, const uint8_t* payload, size_t size,
                 const OFX::Image* source);

// dst's window from src (the same depth and components); outside src's bounds: transparent black.
void copyWindow(OFX::Image& dst, const OfxRectI& window, const OFX::Image* src);

OfxRectI intersect(const OfxRectI& a, const OfxRectI& b);

}  // namespace liveedit
