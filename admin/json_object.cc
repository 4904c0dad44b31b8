#include "admin/json_object.h"

#include <cstdint>

namespace tlsedge::proxy {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view json) : s_(json) {}

  Result<JsonObject> object() {
    JsonObject out;
    skipSpace();
    if (!eat('{')) return bad("expected `{`");
    skipSpace();
    if (eat('}')) return end(std::move(out));
    for (;;) {
      skipSpace();
      std::string key;
      if (Status read = string(&key); !read.ok()) return read.error();
      skipSpace();
      if (!eat(':')) return bad("expected `:`");
      skipSpace();
      JsonScalar value;
      if (Status read = scalar(&value); !read.ok()) return read.error();
      if (!out.emplace(std::move(key), std::move(value)).second) return bad("repeated key");
      skipSpace();
      if (eat('}')) return end(std::move(out));
      if (!eat(',')) return bad("expected `,` or `}`");
    }
  }

 private:
  Result<JsonObject> end(JsonObject out) {
    skipSpace();
    if (i_ != s_.size()) return bad("text after the object");
    return out;
  }

  Error bad(const std::string& what) const {
    return Error{"bad JSON at byte " + std::to_string(i_) + ": " + what};
  }

  void skipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Status scalar(JsonScalar* out) {
    if (i_ >= s_.size()) return bad("expected a value");
    const char c = s_[i_];
    if (c == '"') {
      out->type = JsonScalar::Type::kString;
      return string(&out->text);
    }
    if (literal("true") || literal("false")) {
      out->type = JsonScalar::Type::kBool;
      out->boolean = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
      return Ok{};
    }
    if (literal("null")) return Ok{};
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = i_;
      while (i_ < s_.size() &&
             std::string_view("+-.eE0123456789").find(s_[i_]) != std::string::npos)
        ++i_;
      out->type = JsonScalar::Type::kNumber;
      out->text = std::string(s_.substr(start, i_ - start));
      return Ok{};
    }
    if (c == '{' || c == '[') return bad("nested objects and arrays are not accepted here");
    return bad("expected a value");
  }

  bool hex4(uint32_t* out) {
    if (s_.size() - i_ < 4) return false;
    *out = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      *out <<= 4;
      if (h >= '0' && h <= '9') {
        *out |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        *out |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        *out |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status escape(std::string* out) {
    if (i_ >= s_.size()) return bad("unterminated string");
    const char e = s_[i_++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        return Ok{};
      case 'b':
        out->push_back('\b');
        return Ok{};
      case 'f':
        out->push_back('\f');
        return Ok{};
      case 'n':
        out->push_back('\n');
        return Ok{};
      case 'r':
        out->push_back('\r');
        return Ok{};
      case 't':
        out->push_back('\t');
        return Ok{};
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(&cp)) return bad("bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (!literal("\\u") || !hex4(&low) || low < 0xDC00 || low > 0xDFFF)
            return bad("unpaired surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return bad("unpaired surrogate");
        }
        utf8(cp, out);
        return Ok{};
      }
      default:
        return bad("bad escape");
    }
  }

  Status string(std::string* out) {
    if (!eat('"')) return bad("expected a string");
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return Ok{};
      if (static_cast<unsigned char>(c) < 0x20) return bad("control character in a string");
      if (c != '\\') {
        out->push_back(c);
      } else if (Status escaped = escape(out); !escaped.ok()) {
        return escaped;
      }
    }
    return bad("unterminated string");
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

Result<JsonObject> parseFlatJsonObject(std::string_view json) { return Reader(json).object(); }

}  // namespace tlsedge::proxy
