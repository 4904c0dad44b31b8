#include "conf/yaml_tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <sstream>

namespace tlsedge::conf {

namespace {
const std::string kEmpty;
}

YamlNode::Kind YamlNode::kind() const {
  return document_ ? document_->nodes_[index_].kind : Kind::kNull;
}

const std::string& YamlNode::scalar() const {
  return document_ ? document_->nodes_[index_].scalar : kEmpty;
}

Position YamlNode::position(Position fallback) const {
  if (!document_) return fallback;
  const auto& data = document_->nodes_[index_];
  if (data.line < 0 || data.column < 0) return fallback;
  return Position{data.line + 1, data.column + 1};
}

size_t YamlNode::size() const {
  if (!document_) return 0;
  const auto& data = document_->nodes_[index_];
  return data.kind == Kind::kMap ? data.count / 2 : data.count;
}

YamlNode YamlNode::child(size_t i) const {
  const auto& data = document_->nodes_[index_];
  return YamlNode(document_, document_->children_[data.first + i]);
}

YamlNode YamlNode::item(size_t i) const { return child(i); }
YamlNode YamlNode::key(size_t i) const { return child(2 * i); }
YamlNode YamlNode::value(size_t i) const { return child(2 * i + 1); }

// Turns the parser's events into a YamlDocument. Open collections keep
// their children on one shared stack (`pending_`), moved to the document's
// children vector when the collection ends: no allocation per collection.
class YamlBuilder : public YAML::EventHandler {
 public:
  // `expectedNodes` sizes the document up front: growing a vector of 1.8M
  // nodes by doubling moved every node ~20 times and touched twice the memory
  // (5% of a 100k-site start). A guess too small only means growing again.
  YamlBuilder(YamlDocument& document, size_t expectedNodes) : document_(document) {
    document_.nodes_.reserve(expectedNodes);
    document_.children_.reserve(expectedNodes);
  }

  std::optional<uint32_t> root() const { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(YamlNode::Kind::kNull, mark, anchor);
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    // The parser refuses an alias to an unknown anchor before this.
    attach(anchors_.at(anchor));
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    const uint32_t index = add(YamlNode::Kind::kScalar, mark, anchor);
    document_.nodes_[index].scalar = value;
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(add(YamlNode::Kind::kSequence, mark, anchor));
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(add(YamlNode::Kind::kMap, mark, anchor));
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    uint32_t node;
    size_t from;  // its children start here in pending_
  };

  uint32_t add(YamlNode::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    const auto index = static_cast<uint32_t>(document_.nodes_.size());
    auto& data = document_.nodes_.emplace_back();
    data.kind = kind;
    data.line = mark.line;
    data.column = mark.column;
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
      anchors_[anchor] = index;
    }
    attach(index);
    return index;
  }
  void attach(uint32_t index) {
    if (open_.empty()) {
      if (!root_) root_ = index;
    } else {
      pending_.push_back(index);
    }
  }
  void open(uint32_t node) { open_.push_back(Open{node, pending_.size()}); }
  void close() {
    const Open top = open_.back();
    open_.pop_back();
    auto& data = document_.nodes_[top.node];
    data.first = static_cast<uint32_t>(document_.children_.size());
    data.count = static_cast<uint32_t>(pending_.size() - top.from);
    document_.children_.insert(document_.children_.end(), pending_.begin() + top.from,
                               pending_.end());
    pending_.resize(top.from);
  }

  YamlDocument& document_;
  std::optional<uint32_t> root_;
  std::vector<Open> open_;
  std::vector<uint32_t> pending_;
  std::vector<uint32_t> anchors_;  // anchor id -> node
};

namespace {

// Only where a (second) document's first node is.
class FirstMark : public YAML::EventHandler {
 public:
  std::optional<Position> mark;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    note(m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    note(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    note(m);
  }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& m) {
    if (!mark && m.line >= 0 && m.column >= 0) mark = Position{m.line + 1, m.column + 1};
  }
};

}  // namespace

YamlParse parseYaml(const std::string& text) {
  YamlParse out;
  auto document = std::make_unique<YamlDocument>();
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    // A dense flow-style config holds about one node per 8 bytes (the
    // 100k-site one of bench/loadcmp.py: 8.3); block style with comments, fewer.
    YamlBuilder builder(*document, text.size() / 8);
    if (parser.HandleNextDocument(builder) && builder.root()) {
      out.root = YamlNode(document.get(), *builder.root());
      FirstMark second;
      if (parser.HandleNextDocument(second)) out.secondDocument = second.mark.value_or(Position{});
    }
  } catch (const YAML::Exception& e) {
    // The parser stops at its first error.
    const Position where = e.mark.line >= 0 && e.mark.column >= 0
                               ? Position{e.mark.line + 1, e.mark.column + 1}
                               : Position{};
    out.syntaxError.emplace(where, e.msg);
    return out;
  }
  out.document = std::move(document);
  return out;
}

}  // namespace tlsedge::conf
