// A read-only YAML document, built from yaml-cpp's parser events.
//
// yaml-cpp's own node graph (YAML::Load) costs more than the parse: for a
// 100k-site config, 0.8 s of CPU to build and another 0.75 s to free,
// against 1.3 s for scanning and parsing (measured with the parser and a
// handler doing nothing). conf/ only reads the document once, top to bottom,
// so it reads this compact tree instead: every node in one vector, every
// collection's children in another, scalars as strings (short ones inline).
// The events are yaml-cpp's, so what the document means (nulls, anchors and
// aliases, repeated keys kept in order) is exactly what YAML::Load gives.
//
// Internal to conf/. Nodes are handles into their document, which must
// outlive them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/diagnostics.h"

namespace tlsedge::conf {

class YamlDocument;

class YamlNode {
 public:
  enum class Kind : uint8_t { kNull, kScalar, kSequence, kMap };

  YamlNode() = default;  // a null node with no position (an empty document)

  Kind kind() const;
  bool isNull() const { return kind() == Kind::kNull; }
  bool isScalar() const { return kind() == Kind::kScalar; }
  bool isSequence() const { return kind() == Kind::kSequence; }
  bool isMap() const { return kind() == Kind::kMap; }
  // The text of a scalar; "" for other nodes.
  const std::string& scalar() const;
  // Where the node starts (1-based), or `fallback` for a node without one.
  Position position(Position fallback) const;

  // The items of a sequence, the pairs of a map; 0 for other nodes.
  size_t size() const;
  YamlNode item(size_t i) const;  // sequence
  YamlNode key(size_t i) const;   // map
  YamlNode value(size_t i) const;

 private:
  friend class YamlDocument;
  friend struct YamlParse parseYaml(const std::string& text);
  YamlNode(const YamlDocument* document, uint32_t index) : document_(document), index_(index) {}
  YamlNode child(size_t i) const;

  const YamlDocument* document_ = nullptr;
  uint32_t index_ = 0;
};

// The first document of a text, or why there is none.
struct YamlParse {
  std::unique_ptr<YamlDocument> document;                       // null after a syntax error
  YamlNode root;                                                // null node for an empty text
  std::optional<Position> secondDocument;                       // where a second document starts
  std::optional<std::pair<Position, std::string>> syntaxError;  // where, and yaml-cpp's message
};

YamlParse parseYaml(const std::string& text);

class YamlDocument {
 public:
  YamlDocument() = default;
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;

 private:
  friend class YamlNode;
  friend class YamlBuilder;

  struct Data {
    YamlNode::Kind kind = YamlNode::Kind::kNull;
    int line = -1;  // 0-based, as yaml-cpp's marks; -1: none
    int column = -1;
    uint32_t first = 0;  // into children_
    uint32_t count = 0;  // items, or 2 x pairs (key, value, key, value...)
    std::string scalar;
  };
  std::vector<Data> nodes_;
  std::vector<uint32_t> children_;
};

}  // namespace tlsedge::conf
