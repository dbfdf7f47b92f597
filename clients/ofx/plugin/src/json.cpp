#include "json.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace liveedit {

namespace {
const Json& nullJson() {
    static const Json value;
    return value;
}
const std::string& emptyString() {
    static const std::string value;
    return value;
}
const std::vector<Json>& emptyArray() {
    static const std::vector<Json> value;
    return value;
}
constexpr int kMaxDepth = 64;  // nesting deeper than the sidecar ever sends is refused, not recursed into
}  // namespace

class JsonParser {
public:
    JsonParser(const char* data, size_t size) : p_(data), end_(data + size) {}

    Json document() {
        Json value = parseValue(0);
        skipSpace();
        if (p_ != end_) fail("text after the JSON value");
        return value;
    }

private:
    const char* p_;
    const char* end_;

    [[noreturn]] void fail(const char* what) { throw JsonError(std::string("bad JSON from the sidecar: ") + what); }

    void skipSpace() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool literal(const char* word) {
        size_t n = std::strlen(word);
        if (size_t(end_ - p_) >= n && std::memcmp(p_, word, n) == 0) {
            p_ += n;
            return true;
        }
        return false;
    }

    Json parseValue(int depth) {
        if (depth > kMaxDepth) fail("nested too deeply");
        skipSpace();
        if (p_ >= end_) fail("unexpected end");
        Json value;
        char c = *p_;
        if (c == '{') {
            ++p_;
            value.type_ = Json::Type::Object;
            skipSpace();
            if (p_ < end_ && *p_ == '}') {
                ++p_;
                return value;
            }
            while (true) {
                skipSpace();
                if (p_ >= end_ || *p_ != '"') fail("expected a member name");
                std::string key = parseString();
                skipSpace();
                if (p_ >= end_ || *p_ != ':') fail("expected ':'");
                ++p_;
                value.object_[key] = parseValue(depth + 1);
                skipSpace();
                if (p_ < end_ && *p_ == ',') {
                    ++p_;
                    continue;
                }
                if (p_ < end_ && *p_ == '}') {
                    ++p_;
                    return value;
                }
                fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            ++p_;
            value.type_ = Json::Type::Array;
            skipSpace();
            if (p_ < end_ && *p_ == ']') {
                ++p_;
                return value;
            }
            while (true) {
                value.array_.push_back(parseValue(depth + 1));
                skipSpace();
                if (p_ < end_ && *p_ == ',') {
                    ++p_;
                    continue;
                }
                if (p_ < end_ && *p_ == ']') {
                    ++p_;
                    return value;
                }
                fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            value.type_ = Json::Type::String;
            value.string_ = parseString();
            return value;
        }
        if (literal("true")) {
            value.type_ = Json::Type::Bool;
            value.bool_ = true;
            return value;
        }
        if (literal("false")) {
            value.type_ = Json::Type::Bool;
            return value;
        }
        if (literal("null")) return value;
        if (c == '-' || (c >= '0' && c <= '9')) {
            const char* start = p_;
            while (p_ < end_ && (std::strchr("+-.eE", *p_) != nullptr || (*p_ >= '0' && *p_ <= '9'))) ++p_;
            std::string text(start, p_);
            char* stop = nullptr;
            double number = std::strtod(text.c_str(), &stop);
            if (stop == text.c_str() || *stop != '\0' || !std::isfinite(number)) fail("bad number");
            value.type_ = Json::Type::Number;
            value.number_ = number;
            return value;
        }
        fail("unexpected character");
    }

    static void appendUtf8(std::string& out, unsigned code) {
        if (code < 0x80) {
            out += char(code);
        } else if (code < 0x800) {
            out += char(0xC0 | (code >> 6));
            out += char(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            out += char(0xE0 | (code >> 12));
            out += char(0x80 | ((code >> 6) & 0x3F));
            out += char(0x80 | (code & 0x3F));
        } else {
            out += char(0xF0 | (code >> 18));
            out += char(0x80 | ((code >> 12) & 0x3F));
            out += char(0x80 | ((code >> 6) & 0x3F));
            out += char(0x80 | (code & 0x3F));
        }
    }

    unsigned hex4() {
        if (end_ - p_ < 4) fail("short \\u escape");
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
            char h = *p_++;
            code <<= 4;
            if (h >= '0' && h <= '9') code |= unsigned(h - '0');
            else if (h >= 'a' && h <= 'f') code |= unsigned(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') code |= unsigned(h - 'A' + 10);
            else fail("bad \\u escape");
        }
        return code;
    }

    std::string parseString() {
        ++p_;  // the opening quote
        std::string out;
        while (true) {
            if (p_ >= end_) fail("unterminated string");
            char c = *p_++;
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (p_ >= end_) fail("unterminated escape");
            char e = *p_++;
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned code = hex4();
                    if (code >= 0xD800 && code < 0xDC00 && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
                        p_ += 2;
                        unsigned low = hex4();
                        if (low >= 0xDC00 && low < 0xE000) code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        else code = 0xFFFD;
                    } else if (code >= 0xD800 && code < 0xE000) {
                        code = 0xFFFD;
                    }
                    appendUtf8(out, code);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
};

Json Json::parse(const char* data, size_t size) { return JsonParser(data, size).document(); }

int64_t Json::asInt(int64_t fallback) const {
    if (type_ != Type::Number || !(number_ >= -9.0e18 && number_ <= 9.0e18)) return fallback;
    return int64_t(number_);
}

const std::string& Json::asString() const { return type_ == Type::String ? string_ : emptyString(); }

const Json& Json::operator[](const std::string& key) const {
    if (type_ != Type::Object) return nullJson();
    auto it = object_.find(key);
    return it == object_.end() ? nullJson() : it->second;
}

bool Json::has(const std::string& key) const { return type_ == Type::Object && object_.count(key) != 0; }

const std::vector<Json>& Json::items() const { return type_ == Type::Array ? array_ : emptyArray(); }

std::string jsonQuote(const std::string& text) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
    return out;
}

}  // namespace liveedit
