#pragma once
// The HTML view's cleaner: web/html_clean.hpp (gumbo allow-list rebuild) when it is part of
// the build, else an escape-everything stand-in that shows the HTML source as text.
#include <functional>
#include <string>
#include <string_view>

namespace mv::web {

std::string sanitize_html(std::string_view html, std::function<std::string(std::string_view cid)> cid_url);
// True when the allow-list cleaner is built in.
bool have_html_cleaner();

}  // namespace mv::web
