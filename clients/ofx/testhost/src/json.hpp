// A small JSON value, reader and writer for the test host's line protocol.
// Enough of RFC 8259 for commands and answers: objects, arrays, strings (UTF-8, \u escapes with
// surrogate pairs), numbers (integers kept exact up to 2^53), true/false/null.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace th {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // keeps insertion order

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(int v) : type_(Type::Number), num_(v), isInt_(true) {}
  Json(unsigned v) : type_(Type::Number), num_(v), isInt_(true) {}
  Json(long v) : type_(Type::Number), num_(double(v)), isInt_(true) {}
  Json(long long v) : type_(Type::Number), num_(double(v)), isInt_(true) {}
  Json(unsigned long v) : type_(Type::Number), num_(double(v)), isInt_(true) {}
  Json(unsigned long long v) : type_(Type::Number), num_(double(v)), isInt_(true) {}
  Json(double v) : type_(Type::Number), num_(v) {}
  Json(const char *s) : type_(Type::String), str_(s ? s : "") {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Json(Array a) : type_(Type::Array), arr_(std::make_shared<Array>(std::move(a))) {}

  static Json object() {
    Json j;
    j.type_ = Type::Object;
    j.obj_ = std::make_shared<Object>();
    return j;
  }
  static Json array() { return Json(Array{}); }

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }
  bool isIntegral() const { return isNumber() && std::floor(num_) == num_ && std::fabs(num_) < 9.007199254740992e15; }

  bool asBool() const {
    if (!isBool()) throw std::runtime_error("expected true or false");
    return bool_;
  }
  double asDouble() const {
    if (!isNumber()) throw std::runtime_error("expected a number");
    return num_;
  }
  long long asInt() const {
    if (!isIntegral()) throw std::runtime_error("expected an integer");
    return (long long)num_;
  }
  const std::string &asString() const {
    if (!isString()) throw std::runtime_error("expected a string");
    return str_;
  }
  const Array &asArray() const {
    if (!isArray()) throw std::runtime_error("expected an array");
    return *arr_;
  }
  const Object &asObject() const {
    if (!isObject()) throw std::runtime_error("expected an object");
    return *obj_;
  }

  // object access
  const Json *find(const std::string &key) const {
    if (!isObject()) return nullptr;
    for (auto &kv : *obj_)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  bool has(const std::string &key) const {
    const Json *j = find(key);
    return j && !j->isNull();
  }
  Json &set(const std::string &key, Json value) {
    if (!isObject()) throw std::runtime_error("not an object");
    for (auto &kv : *obj_)
      if (kv.first == key) {
        kv.second = std::move(value);
        return *this;
      }
    obj_->emplace_back(key, std::move(value));
    return *this;
  }
  void push(Json value) {
    if (!isArray()) throw std::runtime_error("not an array");
    arr_->push_back(std::move(value));
  }
  size_t size() const { return isArray() ? arr_->size() : isObject() ? obj_->size() : 0; }
  const Json &operator[](size_t i) const { return asArray().at(i); }

  // typed getters with defaults; a present value of the wrong type is an error
  std::string str(const std::string &key, const std::string &dflt = "") const {
    const Json *j = find(key);
    if (!j || j->isNull()) return dflt;
    if (!j->isString()) throw std::runtime_error("\"" + key + "\" must be a string");
    return j->str_;
  }
  double num(const std::string &key, double dflt) const {
    const Json *j = find(key);
    if (!j || j->isNull()) return dflt;
    if (!j->isNumber()) throw std::runtime_error("\"" + key + "\" must be a number");
    return j->num_;
  }
  long long integer(const std::string &key, long long dflt) const {
    const Json *j = find(key);
    if (!j || j->isNull()) return dflt;
    if (!j->isIntegral()) throw std::runtime_error("\"" + key + "\" must be an integer");
    return (long long)j->num_;
  }
  bool boolean(const std::string &key, bool dflt) const {
    const Json *j = find(key);
    if (!j || j->isNull()) return dflt;
    if (!j->isBool()) throw std::runtime_error("\"" + key + "\" must be true or false");
    return j->bool_;
  }

  std::string dump() const {
    std::string out;
    write(out);
    return out;
  }

  static Json parse(const std::string &text) {
    size_t pos = 0;
    Json j = parseValue(text, pos, 0);
    skipWs(text, pos);
    if (pos != text.size()) fail("trailing characters", pos);
    return j;
  }

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  bool isInt_ = false;
  std::string str_;
  std::shared_ptr<Array> arr_;
  std::shared_ptr<Object> obj_;

  static void writeString(std::string &out, const std::string &s) {
    out += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += char(c);
          }
      }
    }
    out += '"';
  }

  void write(std::string &out) const {
    switch (type_) {
      case Type::Null: out += "null"; break;
      case Type::Bool: out += bool_ ? "true" : "false"; break;
      case Type::Number: {
        if (!std::isfinite(num_)) {
          out += "null";
        } else if (isIntegral() && (isInt_ || std::fabs(num_) < 1e15)) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%lld", (long long)num_);
          out += buf;
        } else {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.17g", num_);
          out += buf;
        }
        break;
      }
      case Type::String: writeString(out, str_); break;
      case Type::Array: {
        out += '[';
        bool first = true;
        for (auto &v : *arr_) {
          if (!first) out += ',';
          first = false;
          v.write(out);
        }
        out += ']';
        break;
      }
      case Type::Object: {
        out += '{';
        bool first = true;
        for (auto &kv : *obj_) {
          if (!first) out += ',';
          first = false;
          writeString(out, kv.first);
          out += ':';
          kv.second.write(out);
        }
        out += '}';
        break;
      }
    }
  }

  [[noreturn]] static void fail(const char *what, size_t pos) {
    throw std::runtime_error(std::string("bad JSON: ") + what + " at offset " + std::to_string(pos));
  }
  static void skipWs(const std::string &t, size_t &p) {
    while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r')) p++;
  }
  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }
  static uint32_t hex4(const std::string &t, size_t &p) {
    if (p + 4 > t.size()) fail("short \\u escape", p);
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      char c = t[p++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("bad \\u escape", p);
    }
    return v;
  }
  static std::string parseString(const std::string &t, size_t &p) {
    if (t[p] != '"') fail("expected a string", p);
    p++;
    std::string out;
    while (true) {
      if (p >= t.size()) fail("unterminated string", p);
      char c = t[p++];
      if (c == '"') break;
      if ((unsigned char)c < 0x20) fail("control character in string", p);
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p >= t.size()) fail("unterminated escape", p);
      char e = t[p++];
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
          uint32_t cp = hex4(t, p);
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (p + 6 <= t.size() && t[p] == '\\' && t[p + 1] == 'u') {
              p += 2;
              uint32_t lo = hex4(t, p);
              if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair", p);
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              fail("lone surrogate", p);
            }
          }
          appendUtf8(out, cp);
          break;
        }
        default: fail("bad escape", p);
      }
    }
    return out;
  }
  static Json parseValue(const std::string &t, size_t &p, int depth) {
    if (depth > 64) fail("nested too deeply", p);
    skipWs(t, p);
    if (p >= t.size()) fail("unexpected end", p);
    char c = t[p];
    if (c == '{') {
      Json o = object();
      p++;
      skipWs(t, p);
      if (p < t.size() && t[p] == '}') {
        p++;
        return o;
      }
      while (true) {
        skipWs(t, p);
        if (p >= t.size()) fail("unexpected end", p);
        std::string key = parseString(t, p);
        skipWs(t, p);
        if (p >= t.size() || t[p] != ':') fail("expected ':'", p);
        p++;
        o.set(key, parseValue(t, p, depth + 1));
        skipWs(t, p);
        if (p < t.size() && t[p] == ',') {
          p++;
          continue;
        }
        if (p < t.size() && t[p] == '}') {
          p++;
          return o;
        }
        fail("expected ',' or '}'", p);
      }
    }
    if (c == '[') {
      Json a = array();
      p++;
      skipWs(t, p);
      if (p < t.size() && t[p] == ']') {
        p++;
        return a;
      }
      while (true) {
        a.push(parseValue(t, p, depth + 1));
        skipWs(t, p);
        if (p < t.size() && t[p] == ',') {
          p++;
          continue;
        }
        if (p < t.size() && t[p] == ']') {
          p++;
          return a;
        }
        fail("expected ',' or ']'", p);
      }
    }
    if (c == '"') return Json(parseString(t, p));
    if (t.compare(p, 4, "true") == 0) {
      p += 4;
      return Json(true);
    }
    if (t.compare(p, 5, "false") == 0) {
      p += 5;
      return Json(false);
    }
    if (t.compare(p, 4, "null") == 0) {
      p += 4;
      return Json();
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = p;
      if (t[p] == '-') p++;
      bool isInt = true;
      while (p < t.size() && ((t[p] >= '0' && t[p] <= '9') || t[p] == '.' || t[p] == 'e' || t[p] == 'E' ||
                              t[p] == '+' || t[p] == '-')) {
        if (t[p] == '.' || t[p] == 'e' || t[p] == 'E') isInt = false;
        p++;
      }
      std::string num = t.substr(start, p - start);
      char *end = nullptr;
      double v = std::strtod(num.c_str(), &end);
      if (!end || *end != '\0' || num == "-") fail("bad number", start);
      Json j(v);
      j.isInt_ = isInt;
      return j;
    }
    fail("unexpected character", p);
  }
};

}  // namespace th
