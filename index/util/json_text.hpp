#pragma once
// Compact JSON text of a document, byte for byte what nlohmann's
// `j.dump(-1, ' ', false, error_handler_t::replace)` gives (the form of every JSON line and
// response we print), at a fraction of its cost: that serializer decodes every byte of every
// string through its UTF-8 state machine, 7 % of serve's CPU per search. Here a string that is
// valid UTF-8 (checked by simdjson) is copied in runs between the bytes JSON escapes; numbers
// other than integers and strings that are not valid UTF-8 go through nlohmann as before.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace mv::index {

void append_json_text(const nlohmann::ordered_json& j, std::string& out);
std::string json_text(const nlohmann::ordered_json& j);
// One JSON string (quotes included), as append_json_text writes a string value.
void append_json_string(std::string_view s, std::string& out);

}  // namespace mv::index
