#include "images.hpp"

#include "ofxsMultiThread.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

namespace liveedit {

namespace {

bool empty(const OfxRectI& r) { return r.x2 <= r.x1 || r.y2 <= r.y1; }

uint64_t depthCode(const std::string& depth) { return depth == "u8" ? 1 : depth == "u16" ? 2 : 3; }

// Each row of `frame` (packed, bottom-up) from `image`: the image's pixels where it has them,
// zeros elsewhere. `row` is called with (y offset, pointer to a full packed row).
template <class RowFn>
void forEachRow(const OFX::Image& image, const OfxRectI& frame, size_t pixelBytes, std::vector<uint8_t>& scratch,
                RowFn&& row) {
    const OfxRectI bounds = image.getBounds();
    const int width = frame.x2 - frame.x1;
    const size_t rowBytes = size_t(width) * pixelBytes;
    const OfxRectI inside = intersect(frame, bounds);
    const bool wholeRows = inside.x1 == frame.x1 && inside.x2 == frame.x2;
    for (int y = frame.y1; y < frame.y2; ++y) {
        const bool has = !empty(inside) && y >= inside.y1 && y < inside.y2;
        if (has && wholeRows) {
            row(y - frame.y1, static_cast<const uint8_t*>(image.getPixelAddress(frame.x1, y)));
            continue;
        }
        scratch.assign(rowBytes, 0);
        if (has) {
            std::memcpy(scratch.data() + size_t(inside.x1 - frame.x1) * pixelBytes, image.getPixelAddress(inside.x1, y),
                        size_t(inside.x2 - inside.x1) * pixelBytes);
        }
        row(y - frame.y1, scratch.data());
    }
}

void hashHeader(FrameHasher& hasher, const SourceInfo& info) {
    hasher.updateU64(uint64_t(info.width()));
    hasher.updateU64(uint64_t(info.height()));
    hasher.updateU64(depthCode(info.format.depth));
    hasher.updateU64(uint64_t(info.format.channels));
    hasher.updateU64(info.premultiplied ? 1 : 0);
}

template <class T>
bool alphaOpaqueT(const uint8_t* row, int width, T top) {
    for (int x = 0; x < width; ++x) {
        T a;
        std::memcpy(&a, row + (size_t(x) * 4 + 3) * sizeof(T), sizeof(T));
        if (a != top) return false;
    }
    return true;
}

// Is every alpha of an RGBA row at its maximum (1.0 for float)?
bool alphaOpaque(const uint8_t* row, int width, const std::string& depth) {
    if (depth == "u8") return alphaOpaqueT<uint8_t>(row, width, 255);
    if (depth == "u16") return alphaOpaqueT<uint16_t>(row, width, 65535);
    return alphaOpaqueT<float>(row, width, 1.0f);
}

SourceInfo sourceInfo(const OFX::Image& image) {
    SourceInfo info;
    info.rod = frameOf(image);
    info.format = formatOf(image);
    info.premultiplied = image.getPreMultiplication() == OFX::eImagePreMultiplied;
    if (empty(info.rod)) throw std::runtime_error("the host handed over an empty source frame");
    if (info.width() > 16384 || info.height() > 16384)
        throw std::runtime_error("source frames larger than 16384 pixels a side are not supported");
    return info;
}

// Alpha from the host's source image, row by row: where the source has pixels, its alpha;
// elsewhere 0 (transparent), or `top` (opaque) when no source image was given.
template <class T>
class SourceAlpha {
public:
    SourceAlpha(const OFX::Image* source, const OfxRectI& window) : source_(source), x1_(window.x1) {
        if (source_) {
            bounds_ = source_->getBounds();
            ax1_ = std::max(window.x1, bounds_.x1);
            ax2_ = std::min(window.x2, bounds_.x2);
        }
    }
    void row(int y) {  // columns [from_, to_) of the window's row y have source pixels
        row_ = nullptr;
        if (source_ && y >= bounds_.y1 && y < bounds_.y2 && ax1_ < ax2_) {
            row_ = static_cast<const T*>(source_->getPixelAddress(ax1_, y));
            from_ = ax1_ - x1_;
            to_ = ax2_ - x1_;
        }
    }
    T at(int x, T top) const {  // column x of the window, counted from 0
        if (row_ && x >= from_ && x < to_) return row_[4 * (x - from_) + 3];
        return source_ ? T(0) : top;
    }

private:
    const OFX::Image* source_;
    int x1_;
    OfxRectI bounds_{0, 0, 0, 0};
    int ax1_ = 0, ax2_ = 0, from_ = 0, to_ = 0;
    const T* row_ = nullptr;
};

// Rows [begin, end) of the window from 8-bit codes through the table; alpha from a plane, from
// the source image, or opaque.
template <class T>
void expandLutRows(OFX::Image& dst, const OfxRectI& window, int channels, const T* lut, const uint8_t* codes,
                   const T* alphaPlane, const OFX::Image* alphaSource, int begin, int end) {
    const int width = window.x2 - window.x1;
    const T top = std::numeric_limits<T>::is_integer ? std::numeric_limits<T>::max() : T(1);
    SourceAlpha<T> sourceAlpha(alphaSource, window);
    for (int r = begin; r < end; ++r) {
        const int y = window.y1 + r;
        T* out = static_cast<T*>(dst.getPixelAddress(window.x1, y));
        const uint8_t* c = codes + size_t(r) * size_t(width) * 3;
        if (channels == 3) {
            for (int x = 0; x < width; ++x, out += 3, c += 3) {
                out[0] = lut[c[0]];
                out[1] = lut[c[1]];
                out[2] = lut[c[2]];
            }
            continue;
        }
        const T* a = alphaPlane ? alphaPlane + size_t(r) * size_t(width) : nullptr;
        sourceAlpha.row(y);
        for (int x = 0; x < width; ++x, c += 3) {  // one pass over the row: colour and alpha together
            out[4 * x + 0] = lut[c[0]];
            out[4 * x + 1] = lut[c[1]];
            out[4 * x + 2] = lut[c[2]];
            out[4 * x + 3] = a ? a[x] : sourceAlpha.at(x, top);
        }
    }
}

// Runs fn(beginRow, endRow) over the host's render threads (OpenFX multithread suite); on one
// thread when the window is small or the host has no such suite. fn must not throw.
class RowSplitter : public OFX::MultiThread::Processor {
public:
    RowSplitter(int rows, std::function<void(int, int)> fn) : rows_(rows), fn_(std::move(fn)) {}
    void multiThreadFunction(unsigned int index, unsigned int count) override {
        const int begin = int(int64_t(rows_) * index / count), end = int(int64_t(rows_) * (index + 1) / count);
        try {
            fn_(begin, end);
        } catch (...) {  // host threads: nothing may escape
        }
    }
    void run(size_t pixels) {
        if (pixels < (size_t(1) << 16)) return fn_(0, rows_);
        try {
            multiThread(std::min(OFX::MultiThread::getNumCPUs(), 16u));
        } catch (...) {
            fn_(0, rows_);
        }
    }

private:
    int rows_;
    std::function<void(int, int)> fn_;
};

// Rows [begin, end) of the window from RGB rows at the host's depth, sent top-down (the
// "rgb" encoding); alpha from the source image where it has pixels, else opaque or 0.
template <class T>
void rgbRows(OFX::Image& dst, const OfxRectI& window, int channels, const uint8_t* payload,
             const OFX::Image* alphaSource, int begin, int end) {
    const int width = window.x2 - window.x1;
    const T top = std::numeric_limits<T>::is_integer ? std::numeric_limits<T>::max() : T(1);
    SourceAlpha<T> sourceAlpha(alphaSource, window);
    const size_t rowBytes = size_t(width) * 3 * sizeof(T);
    for (int r = begin; r < end; ++r) {
        const int y = window.y2 - 1 - r;  // payload row r is the r-th row from the top
        uint8_t* out = static_cast<uint8_t*>(dst.getPixelAddress(window.x1, y));
        const uint8_t* in = payload + size_t(r) * rowBytes;
        if (channels == 3) {
            std::memcpy(out, in, rowBytes);
            continue;
        }
        sourceAlpha.row(y);
        // memcpy per value: the payload need not be aligned for T
        for (int x = 0; x < width; ++x) {
            std::memcpy(out + size_t(x) * 4 * sizeof(T), in + size_t(x) * 3 * sizeof(T), 3 * sizeof(T));
            const T a = sourceAlpha.at(x, top);
            std::memcpy(out + (size_t(x) * 4 + 3) * sizeof(T), &a, sizeof(T));
        }
    }
}

template <class T>
void expandRgb(OFX::Image& dst, const OfxRectI& window, int channels, const uint8_t* payload,
               const OFX::Image* alphaSource) {
    RowSplitter split(window.y2 - window.y1, [&](int begin, int end) {
        rgbRows<T>(dst, window, channels, payload, alphaSource, begin, end);
    });
    split.run(size_t(window.x2 - window.x1) * size_t(window.y2 - window.y1));
}

template <class T>
void expandLut(OFX::Image& dst, const OfxRectI& window, int channels, const T* lut, const uint8_t* codes,
               const T* alphaPlane, const OFX::Image* alphaSource) {
    RowSplitter split(window.y2 - window.y1, [&](int begin, int end) {
        expandLutRows(dst, window, channels, lut, codes, alphaPlane, alphaSource, begin, end);
    });
    split.run(size_t(window.x2 - window.x1) * size_t(window.y2 - window.y1));
}

}  // namespace

OfxRectI intersect(const OfxRectI& a, const OfxRectI& b) {
    OfxRectI r{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2), std::min(a.y2, b.y2)};
    if (r.x2 < r.x1) r.x2 = r.x1;
    if (r.y2 < r.y1) r.y2 = r.y1;
    return r;
}

PixelFormat formatOf(const OFX::ImageBase& image) {
    PixelFormat f;
    switch (image.getPixelDepth()) {
        case OFX::eBitDepthUByte: f.depth = "u8"; break;
        case OFX::eBitDepthUShort: f.depth = "u16"; break;
        case OFX::eBitDepthFloat: f.depth = "f32"; break;
        default: throw std::runtime_error("LiveEdit takes 8-bit, 16-bit or float images; the host sent another depth");
    }
    switch (image.getPixelComponents()) {
        case OFX::ePixelComponentRGBA: f.channels = 4; break;
        case OFX::ePixelComponentRGB: f.channels = 3; break;
        default: throw std::runtime_error("LiveEdit takes RGBA or RGB images; the host sent other components");
    }
    return f;
}

OfxRectI frameOf(const OFX::ImageBase& image) {
    OfxRectI rod = image.getRegionOfDefinition();
    return empty(rod) ? image.getBounds() : rod;
}

SourceInfo describeSource(const OFX::Image& image) {
    SourceInfo info = sourceInfo(image);
    FrameHasher hasher;
    hashHeader(hasher, info);
    const size_t rowBytes = size_t(info.width()) * info.format.pixelBytes();
    std::vector<uint8_t> scratch;
    const int width = info.width();
    const bool rgba = info.format.channels == 4;
    bool opaque = true;
    forEachRow(image, info.rod, info.format.pixelBytes(), scratch, [&](int, const uint8_t* row) {
        hasher.update(row, rowBytes);
        if (rgba && opaque) opaque = alphaOpaque(row, width, info.format.depth);
    });
    info.hash = hasher.finish();
    info.opaque = opaque;
    return info;
}

PackedFrame::PackedFrame(std::unique_ptr<OFX::Image> image) : image_(std::move(image)) {
    info_ = sourceInfo(*image_);
    const size_t pixelBytes = info_.format.pixelBytes();
    const size_t rowBytes = size_t(info_.width()) * pixelBytes;
    const OfxRectI bounds = image_->getBounds();
    FrameHasher hasher;
    hashHeader(hasher, info_);
    const bool laidOut = bounds.x1 == info_.rod.x1 && bounds.x2 == info_.rod.x2 && bounds.y1 == info_.rod.y1 &&
                         bounds.y2 == info_.rod.y2 && image_->getRowBytes() == int(rowBytes);
    if (laidOut) {
        data_ = image_->getPixelAddress(info_.rod.x1, info_.rod.y1);
        hasher.update(data_, rowBytes * size_t(info_.height()));
    } else {
        copy_.resize(rowBytes * size_t(info_.height()));
        std::vector<uint8_t> scratch;
        forEachRow(*image_, info_.rod, pixelBytes, scratch, [&](int r, const uint8_t* row) {
            std::memcpy(copy_.data() + size_t(r) * rowBytes, row, rowBytes);
        });
        data_ = copy_.data();
        hasher.update(data_, copy_.size());
    }
    info_.hash = hasher.finish();
}

void writeWindow(OFX::Image& dst, const OfxRectI& window, const Json& meta, const uint8_t* payload, size_t size,
                 const OFX::Image* source) {
    const PixelFormat f = formatOf(dst);
    const int width = window.x2 - window.x1, height = window.y2 - window.y1;
    if (meta["width"].asInt(-1) != width || meta["height"].asInt(-1) != height || meta["depth"].asString() != f.depth ||
        meta["channels"].asInt(-1) != f.channels)
        throw std::runtime_error("the sidecar answered with another window or format than asked for");
    const size_t pixels = size_t(width) * size_t(height);
    const std::string& encoding = meta["encoding"].asString();
    if (encoding == "raw") {
        const size_t rowBytes = size_t(width) * f.pixelBytes();
        if (meta["raw_bytes"].asInt(-1) != int64_t(rowBytes * size_t(height)) || size != rowBytes * size_t(height))
            throw std::runtime_error("the sidecar's raw frame has the wrong size");
        for (int r = 0; r < height; ++r)
            std::memcpy(dst.getPixelAddress(window.x1, window.y1 + r), payload + size_t(r) * rowBytes, rowBytes);
        return;
    }
    if (encoding == "rgb") {
        const std::string& alphaMode = meta["alpha"].asString();
        const bool fromSource = alphaMode == "source";
        if (meta["rows"].asString() != "top-down" || meta["rgb_bytes"].asInt(-1) != int64_t(pixels * 3 * f.componentBytes()) ||
            size != pixels * 3 * f.componentBytes() || alphaMode != (f.channels == 3 ? "none" : fromSource ? "source" : "opaque"))
            throw std::runtime_error("the sidecar's RGB frame has the wrong size or layout");
        if (fromSource && (!source || formatOf(*source).depth != f.depth || formatOf(*source).channels != 4))
            throw std::runtime_error("the source frame to take alpha from is missing or of another format");
        const OFX::Image* alphaSource = fromSource ? source : nullptr;
        if (f.depth == "u8") expandRgb<uint8_t>(dst, window, f.channels, payload, alphaSource);
        else if (f.depth == "u16") expandRgb<uint16_t>(dst, window, f.channels, payload, alphaSource);
        else expandRgb<float>(dst, window, f.channels, payload, alphaSource);
        return;
    }
    if (encoding != "lut") throw std::runtime_error("the sidecar answered in an encoding this plug-in does not know");
    const size_t lutBytes = 256 * f.componentBytes();
    const std::string& alphaMode = meta["alpha"].asString();
    const bool plane = alphaMode == "plane";
    const bool fromSource = alphaMode == "source";
    const size_t alphaBytes = plane ? pixels * f.componentBytes() : 0;
    if (meta["lut_bytes"].asInt(-1) != int64_t(lutBytes) || meta["rgb_bytes"].asInt(-1) != int64_t(pixels * 3) ||
        size != lutBytes + pixels * 3 + alphaBytes || ((plane || fromSource) && f.channels != 4) ||
        (!plane && !fromSource && alphaMode != (f.channels == 4 ? "opaque" : "none")))
        throw std::runtime_error("the sidecar's frame has the wrong size");
    if (fromSource && (!source || formatOf(*source).depth != f.depth || formatOf(*source).channels != 4))
        throw std::runtime_error("the source frame to take alpha from is missing or of another format");
    const uint8_t* codes = payload + lutBytes;
    const uint8_t* alpha = plane ? codes + pixels * 3 : nullptr;
    const OFX::Image* alphaSource = fromSource ? source : nullptr;
    // The table and an alpha plane are copied out when the payload is not aligned for their type.
    if (f.depth == "u8") {
        expandLut<uint8_t>(dst, window, f.channels, payload, codes, alpha, alphaSource);
    } else if (f.depth == "u16") {
        std::vector<uint16_t> lut(256), a(plane ? pixels : 0);
        std::memcpy(lut.data(), payload, lutBytes);
        if (plane) std::memcpy(a.data(), alpha, alphaBytes);
        expandLut<uint16_t>(dst, window, f.channels, lut.data(), codes, plane ? a.data() : nullptr, alphaSource);
    } else {
        std::vector<float> lut(256), a(plane ? pixels : 0);
        std::memcpy(lut.data(), payload, lutBytes);
        if (plane) std::memcpy(a.data(), alpha, alphaBytes);
        expandLut<float>(dst, window, f.channels, lut.data(), codes, plane ? a.data() : nullptr, alphaSource);
    }
}

void copyWindow(OFX::Image& dst, const OfxRectI& window, const OFX::Image* src) {
    const PixelFormat f = formatOf(dst);
    const size_t pixelBytes = f.pixelBytes();
    OfxRectI inside = src ? intersect(window, src->getBounds()) : OfxRectI{0, 0, 0, 0};
    if (src && (formatOf(*src).depth != f.depth || formatOf(*src).channels != f.channels)) inside = {0, 0, 0, 0};
    for (int y = window.y1; y < window.y2; ++y) {
        uint8_t* row = static_cast<uint8_t*>(dst.getPixelAddress(window.x1, y));
        if (!row) continue;
        std::memset(row, 0, size_t(window.x2 - window.x1) * pixelBytes);
        if (!empty(inside) && y >= inside.y1 && y < inside.y2)
            std::memcpy(row + size_t(inside.x1 - window.x1) * pixelBytes, src->getPixelAddress(inside.x1, y),
                        size_t(inside.x2 - inside.x1) * pixelBytes);
    }
}

}  // namespace liveedit
