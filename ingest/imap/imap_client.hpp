#pragma once
// An IMAP4rev1 client: just what bulk archiving needs (NAMESPACE, LIST, SELECT, pipelined UID FETCH, delete).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "index/util/result.hpp"
#include "ingest/net/account.hpp"
#include "ingest/net/stream.hpp"

namespace mv::ingest::imap {

// One server response: text with each literal's "{N}" marker, and the literals in order.
struct Response {
    std::string text;
    std::vector<std::string> literals;
};

// Tokens of an IMAP response; literals are moved out of the Response.
class Tokenizer {
  public:
    Tokenizer(Response& r, std::size_t pos = 0) : r_(r), pos_(pos) {}
    bool at_end() const { return pos_ >= r_.text.size(); }
    char peek();                       // after skipping spaces; '\0' at end
    bool consume(char c);              // skips spaces, then c if present
    std::string atom();                // atom, may include [...] sections (BODY[HEADER.FIELDS (A B)])
    std::optional<std::string> nstring();  // quoted, literal or atom; NIL is nullopt
    std::vector<std::string> list();   // "(a b c)" flat list of atoms/strings; empty on NIL
    void skip_value();                 // any value, nested lists included
    std::string rest();                // the remaining text

  private:
    Response& r_;
    std::size_t pos_;
    std::size_t next_literal_ = 0;
};

struct Folder {
    std::string raw;    // name as on the server (modified UTF-7)
    std::string path;   // UTF-8 with '/' separators, personal namespace prefix stripped: the label
    char delimiter = 0;
    bool selectable = true;
};

struct SelectInfo {
    std::uint32_t uidvalidity = 0;
    std::uint32_t exists = 0;
    std::uint32_t uidnext = 0;
};

struct Fetched {
    std::uint32_t uid = 0;
    std::vector<std::string> flags;
    std::int64_t internal_date = 0;
    std::optional<std::string> body;     // BODY[] or a BODY[HEADER...] section
};

// The personal namespace of "* NAMESPACE ((prefix delim) ...) ..."; nullopt for none or another response.
struct Namespace {
    std::string prefix;  // e.g. "INBOX." (Courier, Cyrus) or "" (Dovecot)
    char delimiter = 0;
};
std::optional<Namespace> parse_personal_namespace(Response& r);
// The label of a folder: modified UTF-7 decoded, the personal namespace prefix stripped
// ("INBOX.Archiv" -> "Archiv" under prefix "INBOX."), `delimiter` as '/', INBOX in capitals.
std::string folder_label(const std::string& raw, char delimiter, const std::string& personal_prefix);

// Parses "17-Jul-1996 02:44:25 -0700"; 0 when malformed.
std::int64_t parse_internal_date(const std::string& s);
// "1:5,7,9:10" for sorted UIDs.
std::string uid_set(const std::vector<std::uint32_t>& sorted_uids);
// Parses "* n FETCH (...)" responses; nullopt for anything else.
std::optional<Fetched> parse_fetch(Response& r);

class Client {
  public:
    // Connects, applies `security`, reads capabilities and logs in. Errors: unreachable or auth.
    static Result<std::unique_ptr<Client>> open(const net::Account& account);
    ~Client();

    bool has(const std::string& capability) const { return caps_.count(capability) > 0; }
    bool tls() const { return stream_->is_tls(); }
    // Every folder; labels without the personal namespace prefix (asked once when NAMESPACE is offered).
    Result<std::vector<Folder>> list();
    // SELECT (read_write: Courier numbers new mail for good only then) or EXAMINE (read_only).
    enum class Access { read_write, read_only };
    Result<SelectInfo> select(const std::string& raw, Access access);
    Result<std::uint32_t> status_messages(const std::string& raw);
    // STATUS (UIDNEXT); 0 when the server does not say.
    Result<std::uint32_t> status_uidnext(const std::string& raw);
    // UIDs >= first in the selected folder, ascending.
    Result<std::vector<std::uint32_t>> uids_from(std::uint32_t first);
    // Pipelined UID FETCH of `uids` in commands of `batch` UIDs with up to `window` in flight.
    // The sink returns false to stop (the connection is then unusable).
    Result<void> fetch(const std::vector<std::uint32_t>& uids, std::size_t batch, std::size_t window,
                       const std::string& items, const std::function<bool(Fetched&&)>& sink);
    // Marks \Deleted and expunges exactly these UIDs (UIDPLUS); without UIDPLUS, a plain EXPUNGE
    // only when every \Deleted message is one of them or at most `archived_upto` (already archived).
    Result<std::size_t> delete_uids(const std::vector<std::uint32_t>& sorted_uids, std::uint32_t archived_upto);
    void logout();

  private:
    Client(const net::Account& a) : account_(a) {}
    Result<Response> read_response();
    Result<void> send(const std::string& tag, const std::string& command);
    // Runs one command; untagged responses go to `untagged` (if given). NO/BAD become errors.
    Result<void> run(const std::string& command, std::vector<Response>* untagged = nullptr);
    Result<void> capability();
    Result<void> authenticate();
    void take_capabilities(const std::string& text);
    std::string next_tag();
    Error fail_msg(Error::Kind k, const std::string& what) const;

    net::Account account_;
    std::unique_ptr<net::Stream> stream_;
    std::set<std::string> caps_;
    unsigned tag_ = 0;
    std::optional<Namespace> personal_;  // asked by the first list()
    bool namespace_asked_ = false;
};

// Quotes a mailbox name as an IMAP quoted string.
std::string quote(const std::string& s);

}  // namespace mv::ingest::imap
