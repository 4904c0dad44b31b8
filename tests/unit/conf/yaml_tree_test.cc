// conf::parseYaml against yaml-cpp's own YAML::Load as the oracle: the same
// parser events must give the same tree (kinds, scalars, positions, order,
// anchors and aliases), so that configs mean what they meant before.
#include "conf/yaml_tree.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace tlsedge::conf {
namespace {

void expectSame(const YamlNode& ours, const YAML::Node& theirs, const std::string& where) {
  SCOPED_TRACE(where);
  const Position none{0, 0};
  const YAML::Mark mark = theirs.Mark();
  const Position expected =
      mark.line < 0 || mark.column < 0 ? none : Position{mark.line + 1, mark.column + 1};
  const Position got = ours.position(none);
  EXPECT_EQ(got.line, expected.line);
  EXPECT_EQ(got.column, expected.column);
  switch (theirs.Type()) {
    case YAML::NodeType::Null:
      EXPECT_TRUE(ours.isNull());
      break;
    case YAML::NodeType::Scalar:
      ASSERT_TRUE(ours.isScalar());
      EXPECT_EQ(ours.scalar(), theirs.Scalar());
      break;
    case YAML::NodeType::Sequence: {
      ASSERT_TRUE(ours.isSequence());
      ASSERT_EQ(ours.size(), theirs.size());
      size_t i = 0;
      for (const YAML::Node& item : theirs) {
        expectSame(ours.item(i), item, where + "[" + std::to_string(i) + "]");
        ++i;
      }
      break;
    }
    case YAML::NodeType::Map: {
      ASSERT_TRUE(ours.isMap());
      ASSERT_EQ(ours.size(), theirs.size());
      size_t i = 0;
      for (const auto& pair : theirs) {
        expectSame(ours.key(i), pair.first, where + ".key" + std::to_string(i));
        expectSame(ours.value(i), pair.second, where + ".value" + std::to_string(i));
        ++i;
      }
      break;
    }
    case YAML::NodeType::Undefined:
      FAIL() << "undefined node";
  }
}

void expectLikeYamlCpp(const std::string& text) {
  SCOPED_TRACE(text);
  const YamlParse parsed = parseYaml(text);
  ASSERT_FALSE(parsed.syntaxError) << parsed.syntaxError->second;
  const std::vector<YAML::Node> documents = YAML::LoadAll(text);
  EXPECT_EQ(parsed.secondDocument.has_value(), documents.size() > 1);
  if (documents.empty()) {
    EXPECT_TRUE(parsed.root.isNull());
    EXPECT_EQ(parsed.root.position(Position{7, 7}).line, 7);  // no position
    return;
  }
  expectSame(parsed.root, documents.front(), "root");
  if (documents.size() > 1) {
    const YAML::Mark mark = documents[1].Mark();
    EXPECT_EQ(parsed.secondDocument->line, mark.line + 1);
    EXPECT_EQ(parsed.secondDocument->column, mark.column + 1);
  }
}

TEST(YamlTree, BlockAndFlowCollections) {
  expectLikeYamlCpp(
      "workers: 2\n"
      "listen:\n"
      "  https: [\"127.0.0.1:443\", \"[::1]:443\"]\n"
      "  http: []\n"
      "sites:\n"
      "  - name: a\n"
      "    hosts: [a.example, \"*.a.example\"]\n"
      "    routes: [{ path: /, upstream: origin }]\n"
      "  - { name: b, hosts: [b.example], tls: { acme: true } }\n");
}

TEST(YamlTree, NullsScalarsAndQuoting) {
  expectLikeYamlCpp(
      "empty:\n"
      "tilde: ~\n"
      "word: null\n"
      "quoted: \"null\"\n"
      "single: 'it''s'\n"
      "tagged: !!str 123\n"
      "folded: >\n"
      "  one\n"
      "  two\n"
      "literal: |\n"
      "  line\n"
      "list: [~, '', x]\n"
      "? complex\n"
      ": value\n");
}

TEST(YamlTree, RepeatedKeysKeptInOrder) {
  expectLikeYamlCpp("a: 1\nb: 2\na: 3\n");
  const YamlParse parsed = parseYaml("a: 1\nb: 2\na: 3\n");
  ASSERT_EQ(parsed.root.size(), 3u);
  EXPECT_EQ(parsed.root.value(2).scalar(), "3");
}

TEST(YamlTree, AnchorsAndAliasesShareTheNode) {
  const std::string text =
      "common: &c { path: /, upstream: origin }\n"
      "sites:\n"
      "  - routes: [*c]\n"
      "  - routes: [*c, { path: /x, respond: {} }]\n"
      "name: &n shop\n"
      "again: *n\n";
  expectLikeYamlCpp(text);
  const YamlParse parsed = parseYaml(text);
  EXPECT_EQ(parsed.root.value(3).scalar(), "shop");
  const YamlNode first = parsed.root.value(1).item(0).value(0).item(0);
  ASSERT_TRUE(first.isMap());
  EXPECT_EQ(first.value(1).scalar(), "origin");
}

TEST(YamlTree, DocumentsAndEmptyText) {
  expectLikeYamlCpp("");
  expectLikeYamlCpp("# only a comment\n");
  expectLikeYamlCpp("---\n");
  expectLikeYamlCpp("a: 1\n---\nb: 2\n");
  expectLikeYamlCpp("a: 1\n---\n");
  expectLikeYamlCpp("- 1\n- [2, 3]\n");
  expectLikeYamlCpp("just a scalar\n");
}

TEST(YamlTree, SyntaxErrorsSayWhere) {
  const YamlParse parsed = parseYaml("workers: 2\n\tsites: []\n");
  ASSERT_TRUE(parsed.syntaxError);
  EXPECT_EQ(parsed.syntaxError->first.line, 2);
  EXPECT_EQ(parsed.syntaxError->first.column, 1);
  EXPECT_FALSE(parsed.syntaxError->second.empty());
  EXPECT_EQ(parsed.document, nullptr);
  EXPECT_TRUE(parseYaml("a: *unknown\n").syntaxError);
  EXPECT_TRUE(parseYaml("a: [1, 2\n").syntaxError);
}

}  // namespace
}  // namespace tlsedge::conf
