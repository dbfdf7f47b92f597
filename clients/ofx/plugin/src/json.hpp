// A small JSON reader and string escaper: enough for the sidecar's answers (objects, arrays,
// numbers, strings, booleans, null). Malformed input throws JsonError; nothing else is thrown.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace liveedit {

class JsonError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Json {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };

    Json() = default;
    static Json parse(const char* data, size_t size);  // throws JsonError
    static Json parse(const std::string& text) { return parse(text.data(), text.size()); }

    Type type() const { return type_; }
    bool isNull() const { return type_ == Type::Null; }
    bool isObject() const { return type_ == Type::Object; }
    bool isArray() const { return type_ == Type::Array; }
    bool isString() const { return type_ == Type::String; }
    bool isNumber() const { return type_ == Type::Number; }
    bool isBool() const { return type_ == Type::Bool; }

    // Typed access; the fallback when the value is absent or of another type.
    bool asBool(bool fallback = false) const { return type_ == Type::Bool ? bool_ : fallback; }
    double asNumber(double fallback = 0) const { return type_ == Type::Number ? number_ : fallback; }
    int64_t asInt(int64_t fallback = 0) const;
    const std::string& asString() const;  // "" unless a string

    // Object member (a Null value when absent or not an object) and array items.
    const Json& operator[](const std::string& key) const;
    bool has(const std::string& key) const;
    const std::vector<Json>& items() const;  // empty unless an array

private:
    friend class JsonParser;
    Type type_ = Type::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<Json> array_;
    std::map<std::string, Json> object_;
};

// `"text"` with JSON escapes (UTF-8 passes through; control characters become \u00XX).
std::string jsonQuote(const std::string& text);

}  // namespace liveedit
