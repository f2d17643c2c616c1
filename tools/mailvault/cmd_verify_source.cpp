// `mailvault verify --source NAME`: the server's list against the archive's records.
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "index/document/builder.hpp"
#include "index/schema.hpp"
#include "index/text/fold.hpp"
#include "ingest/imap/imap_sync.hpp"
#include "ingest/oauth/delegated.hpp"
#include "ingest/server_listing.hpp"
#include "ingest/source.hpp"
#include "tools/mailvault/verify_source.hpp"

namespace mv::cli {
namespace {

// Server ids the archive recorded for `source`, by (mailbox, folder): every place a stored
// message was seen at fetch time (duplicates included).
Result<std::map<std::pair<std::string, std::string>, std::set<std::string>>> archived_ids(const index::Archive& archive,
                                                                                      const std::string& source) {
    std::map<std::pair<std::string, std::string>, std::set<std::string>> out;
    try {
        Xapian::Database db = archive.database();
        const std::string term = std::string(schema::prefix_of("source")) + text::fold(source);
        for (auto p = db.postlist_begin(term); p != db.postlist_end(term); ++p) {
            auto d = index::DocData::from_json(db.get_document(*p, Xapian::DOC_ASSUME_VALID).get_data());
            for (const auto& l : d.locations)
                if (l.source == source && !l.server_id.empty()) out[{l.mailbox, l.folder}].insert(l.server_id);
        }
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "verify --source: reading the index: " + e.get_msg() +
                                         " (run `mailvault verify` to find damage)");
    }
    return out;
}

}  // namespace

int run_verify_source(Context& ctx, const std::string& name, bool json) {
    const SourceConfig* sc = ctx.config.source(name);
    if (!sc) return report(make_error(Error::Kind::usage, "no source named '" + name + "' in the configuration"));
    if (sc->type != "imap" && sc->type != "pop3" && sc->type != "graph")
        return report(make_error(Error::Kind::usage, "source '" + name + "' is of type " + sc->type +
                                                         ": verify --source compares a server (graph, imap, pop3) with the archive"));
    if (auto ok = sc->check_secrets(); !ok) return report(make_error(Error::Kind::usage, ok.error().message));
    int code = 0;
    auto archive = ctx.open_archive(index::OpenMode::read, code);
    if (!archive) return code;
    auto ids = archived_ids(*archive, name);
    if (!ids) return report(ids.error());
    // UIDs name messages only under the UIDVALIDITY they were fetched with (the sync's checkpoint).
    std::map<std::string, std::string> notes;  // folder -> why its UIDs cannot be matched
    auto archived = [&](const ingest::ListedFolder& f, const std::string& id) {
        if (!f.validity.empty()) {
            const std::string known = archive->metadata(ingest::checkpoint_key(name, ingest::imap::uidvalidity_key(f.folder)));
            if (!known.empty() && known != f.validity) {
                notes[f.mailbox + "\n" + f.folder] = "UIDVALIDITY is " + f.validity + ", the archive's UIDs belong to " + known +
                                                     ": the next sync reads the folder again";
                return false;
            }
        }
        auto it = ids->find({f.mailbox, f.folder});
        return it != ids->end() && it->second.count(id) > 0;
    };
    auto with_token = ingest::oauth::with_access_token(*sc, sc->type, ctx.archive_dir);
    auto folders = with_token ? ingest::list_unarchived(*with_token, archived) : fail(with_token.error());
    if (!folders) {
        report(folders.error());
        return folders.error().kind == Error::Kind::usage ? k_usage : k_nothing;
    }
    std::uint64_t listed = 0, missing = 0, errors = 0;
    const char* id_name = sc->type == "imap" ? "UID" : sc->type == "pop3" ? "UIDL" : "id";
    nlohmann::ordered_json jf = nlohmann::ordered_json::array();
    for (const auto& f : *folders) {
        listed += f.listed;
        missing += f.missing.size();
        if (!f.error.empty()) ++errors;
        const std::string where = f.mailbox + "/" + (f.folder.empty() ? std::string("(folders)") : f.folder);
        const auto note = notes.find(f.mailbox + "\n" + f.folder);
        if (json) {
            nlohmann::ordered_json j;
            j["mailbox"] = f.mailbox;
            j["folder"] = f.folder;
            if (!f.validity.empty()) j["uidvalidity"] = f.validity;
            j["listed"] = f.listed;
            j["archived"] = f.listed - f.missing.size();
            auto m = nlohmann::ordered_json::array();
            for (const auto& x : f.missing) m.push_back({{"id", x.id}, {"subject", x.subject}, {"date", x.date}});
            j["not_archived"] = std::move(m);
            if (!f.error.empty()) j["error"] = f.error;
            if (note != notes.end()) j["note"] = note->second;
            jf.push_back(std::move(j));
            continue;
        }
        if (!f.error.empty()) {
            std::cout << where << ": not listed: " << f.error << "\n";
            continue;
        }
        std::cout << where << ": " << f.listed << " on the server, " << f.listed - f.missing.size() << " archived";
        if (!f.missing.empty()) std::cout << ", " << f.missing.size() << " NOT archived";
        std::cout << "\n";
        if (note != notes.end()) std::cout << "  note: " << note->second << "\n";
        for (const auto& x : f.missing) {
            std::cout << "  not archived: " << where << " " << id_name << " " << x.id;
            if (!x.subject.empty()) std::cout << " \"" << x.subject << "\"";
            if (!x.date.empty()) std::cout << " (" << x.date << ")";
            std::cout << "\n";
        }
    }
    if (json) {
        nlohmann::ordered_json j;
        j["source"] = name;
        j["listed"] = listed;
        j["not_archived"] = missing;
        j["folder_errors"] = errors;
        j["complete"] = missing == 0 && errors == 0;
        j["folders"] = std::move(jf);
        std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    }
    std::cout << std::flush;
    if (!ctx.quiet)
        std::cerr << "verify --source " << name << ": " << folders->size() << " folders, " << listed << " messages on the server, "
                  << missing << " not archived" << (errors ? ", " + std::to_string(errors) + " folders not listed" : "") << "\n";
    return missing == 0 && errors == 0 ? k_ok : k_partial;
}

}  // namespace mv::cli
