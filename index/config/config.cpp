#include "index/config/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

namespace mv {

std::string SourceConfig::get(const std::string& key, const std::string& fallback) const {
    auto it = strings.find(key);
    return it == strings.end() ? fallback : it->second;
}

std::vector<std::string> SourceConfig::get_list(const std::string& key, std::vector<std::string> fallback) const {
    auto it = lists.find(key);
    if (it != lists.end()) return it->second;
    auto s = strings.find(key);
    if (s != strings.end()) return {s->second};
    return fallback;
}

Result<long> SourceConfig::get_int(const std::string& key, long fallback) const {
    auto it = strings.find(key);
    if (it == strings.end()) return fallback;
    try {
        std::size_t used = 0;
        long v = std::stol(it->second, &used);
        if (used == it->second.size()) return v;
    } catch (...) {
    }
    return fail(Error::Kind::usage, "source '" + name + "': " + key + " must be an integer");
}

Result<bool> SourceConfig::get_bool(const std::string& key, bool fallback) const {
    auto it = strings.find(key);
    if (it == strings.end()) return fallback;
    if (it->second == "true") return true;
    if (it->second == "false") return false;
    return fail(Error::Kind::usage, "source '" + name + "': " + key + " must be true or false");
}

Result<std::string> SourceConfig::secret(const std::string& base) const {
    const std::string who = name.empty() ? type : name;
    if (auto env = strings.find(base + "_env"); env != strings.end()) {
        const char* v = std::getenv(env->second.c_str());
        if (!v || !*v)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_env names environment variable " +
                                                env->second + ", which is not set");
        return std::string(v);
    }
    if (auto file = strings.find(base + "_file"); file != strings.end()) {
        std::ifstream in(file->second, std::ios::binary);
        if (!in)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_file " + file->second + " cannot be read");
        std::stringstream ss;
        ss << in.rdbuf();
        std::string v = ss.str();
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
        return v;
    }
    if (auto plain = strings.find(base); plain != strings.end()) return plain->second;
    return fail(Error::Kind::usage, "source '" + who + "': no " + base + " (set " + base + "_env, " + base + "_file or " + base + ")");
}

const SourceConfig* Config::source(const std::string& n) const {
    for (const auto& s : sources)
        if (s.name == n) return &s;
    return nullptr;
}

namespace {

std::string scalar_text(const toml::node& n) {
    if (auto s = n.value<std::string>()) return *s;
    if (n.is_boolean()) return *n.value<bool>() ? "true" : "false";
    if (n.is_integer()) return std::to_string(*n.value<int64_t>());
    if (n.is_floating_point()) return std::to_string(*n.value<double>());
    return {};
}

SourceConfig read_table(const toml::table& t) {
    SourceConfig sc;
    for (const auto& [k, v] : t) {
        std::string key(k.str());
        if (const auto* arr = v.as_array()) {
            std::vector<std::string> items;
            for (const auto& e : *arr) items.push_back(scalar_text(e));
            sc.lists[key] = std::move(items);
        } else if (!v.is_table()) {
            sc.strings[key] = scalar_text(v);
        }
    }
    sc.name = sc.get("name");
    sc.type = sc.get("type");
    return sc;
}

}  // namespace

Result<Config> load_config(const std::filesystem::path& file) {
    Config c;
    c.file = file;
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ":" << e.source().begin.line << ": " << e.description();
        return fail(Error::Kind::usage, msg.str());
    }
    if (auto* a = root["archive"].as_table()) {
        c.archive_path = (*a)["path"].value_or(std::string{});
        c.stemmer = (*a)["stemmer"].value_or(std::string{"english"});
        c.timezone = (*a)["timezone"].value_or(std::string{});
    }
    if (auto* l = root["links"].as_table()) {
        c.links_base_url = (*l)["base_url"].value_or(c.links_base_url);
        c.links_template = (*l)["template"].value_or(c.links_template);
        c.links_title_field = (*l)["title_field"].value_or(std::string{});
    }
    if (auto* arr = root["source"].as_array()) {
        for (const auto& node : *arr) {
            const auto* t = node.as_table();
            if (!t) return fail(Error::Kind::usage, file.string() + ": [[source]] must be a table");
            SourceConfig sc = read_table(*t);
            if (sc.name.empty()) return fail(Error::Kind::usage, file.string() + ": a [[source]] has no name");
            if (sc.type.empty()) return fail(Error::Kind::usage, file.string() + ": source '" + sc.name + "' has no type");
            for (const auto& other : c.sources)
                if (other.name == sc.name)
                    return fail(Error::Kind::usage, file.string() + ": source name '" + sc.name + "' is used twice");
            c.sources.push_back(std::move(sc));
        }
    }
    if (auto* s = root["smtp"].as_table()) {
        SourceConfig sc = read_table(*s);
        sc.name = "smtp";
        sc.type = "smtp";
        c.smtp = std::move(sc);
    }
    if (auto* users = root["users"].as_table()) {
        for (const auto& [name, node] : *users) {
            const auto* t = node.as_table();
            if (!t) continue;
            UserConfig u;
            u.name = std::string(name.str());
            u.password_hash = (*t)["password_hash"].value_or(std::string{});
            if (auto* mb = (*t)["mailboxes"].as_array())
                for (const auto& e : *mb) u.mailboxes.push_back(e.value_or(std::string{}));
            u.role = (*t)["role"].value_or(u.role);
            if (u.role != "user" && u.role != "auditor" && u.role != "admin")
                return fail(Error::Kind::usage, file.string() + ": users." + u.name + ".role: use user, auditor or admin");
            c.users.push_back(std::move(u));
        }
    }
    if (auto* s = root["serve"].as_table()) {
        c.serve_listen = (*s)["listen"].value_or(c.serve_listen);
        c.serve_cert = (*s)["cert"].value_or(std::string{});
        c.serve_key = (*s)["key"].value_or(std::string{});
        c.serve_session_idle = (*s)["session_idle"].value_or(c.serve_session_idle);
        c.serve_session_max = (*s)["session_max"].value_or(c.serve_session_max);
        c.serve_threads = (*s)["threads"].value_or(c.serve_threads);
        c.serve_request_timeout = (*s)["request_timeout"].value_or(c.serve_request_timeout);
        c.serve_idle_timeout = (*s)["idle_timeout"].value_or(c.serve_idle_timeout);
        c.serve_per_ip_connections = (*s)["per_ip_connections"].value_or(c.serve_per_ip_connections);
        if (c.serve_per_ip_connections < 1 || c.serve_per_ip_connections > 10000)
            return fail(Error::Kind::usage, file.string() + ": serve.per_ip_connections: use 1 to 10000");
        if (c.serve_threads < 1 || c.serve_threads > 256)
            return fail(Error::Kind::usage, file.string() + ": serve.threads: use 1 to 256");
    }
    return c;
}

}  // namespace mv
