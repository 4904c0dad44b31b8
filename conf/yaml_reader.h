// Typed, checked access to a YAML document (conf/yaml_tree.h).
//
// Internal to conf/. Every reader reports
// what is wrong to Diagnostics and returns nullopt, so that the section
// parsers read top to bottom without error plumbing and still collect every
// problem.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "conf/diagnostics.h"
#include "conf/yaml_tree.h"

namespace tlsedge::conf {

// A node with the key path that names it in messages ("sites[0].hosts[1]")
// and the position to point at: the value, or its key when the value is
// empty (yaml-cpp places an empty value at the start of the next line).
struct Field {
  YamlNode node;
  std::string path;
  Position pos;
};

// "sites" + "name" -> "sites.name"; "" + "sites" -> "sites".
std::string childPath(const std::string& path, std::string_view key);
// "sites" + 2 -> "sites[2]".
std::string indexPath(const std::string& path, size_t index);

// A YAML map whose keys are checked against those its section allows. The
// constructor reports a non-map, unknown keys (with the allowed list),
// non-scalar and duplicate keys. An empty value (`tls:`) is an empty map.
class MapReader {
 public:
  struct Entry {
    std::string key;
    Field keyField;  // the key itself, e.g. to validate a name used as key
    Field value;
  };

  // `allowed` empty: any key (maps from names to objects).
  MapReader(Diagnostics& diag, const Field& map, std::initializer_list<std::string_view> allowed);

  bool isMap() const { return isMap_; }
  const Field& field() const { return map_; }

  // The value under `key`, or nullopt if absent.
  std::optional<Field> get(std::string_view key) const;
  // As get(), but reports "required key is missing" at the map's position.
  std::optional<Field> require(std::string_view key) const;
  // All entries, in document order, duplicates left out.
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  Diagnostics& diag_;
  Field map_;
  bool isMap_ = false;
  std::vector<Entry> entries_;
};

// Scalar readers: report a wrong type or value and return nullopt.
std::optional<std::string> readString(Diagnostics& diag, const Field& field);
// As readString, and also refuses "".
std::optional<std::string> readNonEmptyString(Diagnostics& diag, const Field& field);
// An integer in min..max (the message names the range).
std::optional<int64_t> readInt(Diagnostics& diag, const Field& field, int64_t min, int64_t max);
// As readInt, and `auto` reads as `autoValue`.
std::optional<int64_t> readIntOrAuto(Diagnostics& diag, const Field& field, int64_t min,
                                     int64_t max, int64_t autoValue);
// true or false (YAML 1.2 spellings; "yes"/"on" are refused as ambiguous).
std::optional<bool> readBool(Diagnostics& diag, const Field& field);
std::optional<Duration> readDuration(Diagnostics& diag, const Field& field);
// A byte count ("16k") in min..max.
std::optional<uint64_t> readSize(Diagnostics& diag, const Field& field, uint64_t max,
                                 uint64_t min = 0);
// The items of a list as Fields named path[i]. An empty value is an empty list.
std::optional<std::vector<Field>> readList(Diagnostics& diag, const Field& field);

// "a map", "a list", "`text`", "nothing": for "expected X, got Y" messages.
std::string describe(const YamlNode& node);

}  // namespace tlsedge::conf
