#include "conf/yaml_reader.h"

#include <algorithm>
#include <charconv>

#include "conf/values.h"

namespace tlsedge::conf {
namespace {

// Levenshtein distance, to suggest the key a typo meant.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string unknownKeyMessage(std::string_view key,
                              std::initializer_list<std::string_view> allowed) {
  std::string message = "unknown key `" + std::string(key) + "`";
  std::string_view best;
  size_t bestDistance = 3;  // suggest only close matches
  for (std::string_view candidate : allowed) {
    const size_t d = editDistance(key, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  if (!best.empty()) message += " (did you mean `" + std::string(best) + "`?)";
  message += "; allowed: ";
  bool first = true;
  for (std::string_view candidate : allowed) {
    if (!first) message += ", ";
    message += candidate;
    first = false;
  }
  return message;
}

}  // namespace

std::string childPath(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return path + "." + std::string(key);
}

std::string indexPath(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string describe(const YamlNode& node) {
  switch (node.kind()) {
    case YamlNode::Kind::kMap:
      return "a map";
    case YamlNode::Kind::kSequence:
      return "a list";
    case YamlNode::Kind::kScalar:
      return "`" + node.scalar() + "`";
    case YamlNode::Kind::kNull:
      break;
  }
  return "nothing";
}

MapReader::MapReader(Diagnostics& diag, const Field& map,
                     std::initializer_list<std::string_view> allowed)
    : diag_(diag), map_(map) {
  if (map.node.isNull()) {
    isMap_ = true;
    return;
  }
  if (!map.node.isMap()) {
    diag_.report(map.pos, map.path, "expected a map, got " + describe(map.node));
    return;
  }
  isMap_ = true;
  for (size_t i = 0; i < map.node.size(); ++i) {
    const YamlNode keyNode = map.node.key(i);
    const Position keyPos = keyNode.position(map.pos);
    if (!keyNode.isScalar()) {
      diag_.report(keyPos, map.path, "keys must be plain names, got " + describe(keyNode));
      continue;
    }
    const std::string& key = keyNode.scalar();
    const std::string path = childPath(map.path, key);
    if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      diag_.report(keyPos, path, unknownKeyMessage(key, allowed));
      continue;
    }
    // The document keeps both copies of a repeated key and lookups see the
    // first: the second would be silently ignored.
    auto same = std::find_if(entries_.begin(), entries_.end(),
                             [&](const Entry& e) { return e.key == key; });
    if (same != entries_.end()) {
      diag_.report(keyPos, path,
                   "duplicate key (first at line " + std::to_string(same->keyField.pos.line) + ")");
      continue;
    }
    const YamlNode valueNode = map.node.value(i);
    const Position valuePos = valueNode.isNull() ? keyPos : valueNode.position(keyPos);
    entries_.push_back(Entry{key, Field{keyNode, path, keyPos}, Field{valueNode, path, valuePos}});
  }
}

std::optional<Field> MapReader::get(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

std::optional<Field> MapReader::require(std::string_view key) const {
  auto value = get(key);
  if (!value && isMap_) {
    diag_.report(map_.pos, childPath(map_.path, key), "required key is missing");
  }
  return value;
}

std::optional<std::string> readString(Diagnostics& diag, const Field& field) {
  if (!field.node.isScalar()) {
    diag.report(field.pos, field.path, "expected a string, got " + describe(field.node));
    return std::nullopt;
  }
  return field.node.scalar();
}

std::optional<std::string> readNonEmptyString(Diagnostics& diag, const Field& field) {
  auto value = readString(diag, field);
  if (value && value->empty()) {
    diag.report(field.pos, field.path, "must not be empty");
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> readInt(Diagnostics& diag, const Field& field, int64_t min, int64_t max) {
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (!field.node.isScalar()) {
    diag.report(field.pos, field.path,
                "expected an integer " + range + ", got " + describe(field.node));
    return std::nullopt;
  }
  const std::string& text = field.node.scalar();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || end != text.data() + text.size() || ec == std::errc::invalid_argument) {
    diag.report(field.pos, field.path, "expected an integer " + range + ", got `" + text + "`");
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    diag.report(field.pos, field.path, "must be " + range + ", got " + text);
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> readIntOrAuto(Diagnostics& diag, const Field& field, int64_t min,
                                     int64_t max, int64_t autoValue) {
  const std::string text = field.node.isScalar() ? field.node.scalar() : "";
  if (text == "auto") return autoValue;
  // Anything but a number gets the full choice, not just the integer range.
  if (text.empty() || text.find_first_not_of("+-0123456789") != std::string::npos) {
    diag.report(field.pos, field.path,
                "expected `auto` or an integer " + std::to_string(min) + ".." +
                    std::to_string(max) + ", got " + describe(field.node));
    return std::nullopt;
  }
  return readInt(diag, field, min, max);
}

std::optional<bool> readBool(Diagnostics& diag, const Field& field) {
  if (field.node.isScalar()) {
    const std::string& text = field.node.scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  diag.report(field.pos, field.path, "expected true or false, got " + describe(field.node));
  return std::nullopt;
}

std::optional<Duration> readDuration(Diagnostics& diag, const Field& field) {
  if (!field.node.isScalar()) {
    diag.report(field.pos, field.path, "expected a duration, got " + describe(field.node));
    return std::nullopt;
  }
  auto parsed = parseDuration(field.node.scalar());
  if (!parsed) {
    diag.report(field.pos, field.path, parsed.error().message);
    return std::nullopt;
  }
  return *parsed;
}

std::optional<uint64_t> readSize(Diagnostics& diag, const Field& field, uint64_t max,
                                 uint64_t min) {
  if (!field.node.isScalar()) {
    diag.report(field.pos, field.path, "expected a size, got " + describe(field.node));
    return std::nullopt;
  }
  auto parsed = parseSize(field.node.scalar());
  if (!parsed) {
    diag.report(field.pos, field.path, parsed.error().message);
    return std::nullopt;
  }
  if (*parsed > max) {
    diag.report(field.pos, field.path,
                "must be at most " + std::to_string(max) + " bytes, got " + field.node.scalar());
    return std::nullopt;
  }
  if (*parsed < min) {
    const std::string least =
        min % 1024 == 0 ? std::to_string(min / 1024) + "k" : std::to_string(min) + " bytes";
    diag.report(field.pos, field.path,
                "must be at least " + least + ", got " + field.node.scalar());
    return std::nullopt;
  }
  return *parsed;
}

std::optional<std::vector<Field>> readList(Diagnostics& diag, const Field& field) {
  std::vector<Field> items;
  if (field.node.isNull()) return items;
  if (!field.node.isSequence()) {
    diag.report(field.pos, field.path, "expected a list, got " + describe(field.node));
    return std::nullopt;
  }
  items.reserve(field.node.size());
  for (size_t i = 0; i < field.node.size(); ++i) {
    const YamlNode item = field.node.item(i);
    items.push_back(Field{item, indexPath(field.path, i), item.position(field.pos)});
  }
  return items;
}

}  // namespace tlsedge::conf
