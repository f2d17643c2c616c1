#pragma once
// Builds the Xapian document for a parsed message. The indexing contract:
//
// - Text is folded (text::fold) before the TermGenerator; TermGenerator runs with the
//   archive's stemmer (STEM_SOME: Z-prefixed stems beside exact terms) and FLAG_CJK_NGRAM.
//   A Z term is added only where the stem differs from the word ("kernels" -> ZBkernel;
//   "kernel" alone adds no ZBkernel), so a stemmed query term Z<p><s> must also match the
//   exact term <p><s>: query::parse() searches both as one (OP_SYNONYM).
// - Prefixed text fields (schema::k_fields, kind text) carry positions: F from, T to, C cc,
//   XBCC bcc, S subject, B body (and the text of attached messages), XA attachment names,
//   XAT attachment text (index/extract: PDF, Office, text, attached messages, zip members).
// - Nothing is indexed without prefix (one copy of each term keeps the serial index write
//   small): a query's free words search "B" and the prefix of every in_free_text field.
// - Boolean terms (exact, folded, no positions): XMB<mailbox>, XFD<folder>, XSR<source>,
//   XMID<message-id without <>, lowercased>, XHASattachment, Q<hex dedupe key>, XSHA<hex sha>.
//   Folder labels are the full path ("Inbox/Projects"); each ancestor path is added too.
//   Each location with a server id adds location_id_term() (XID<hash>), to find the document
//   from (source, mailbox, server id); XSTATEremoved once a location was removed on the server;
//   XFLAG<flag_name()> for each flag a location was seen with; XSTATEbroken for a message with
//   parse defects; XREF<id> (lowercased) for each In-Reply-To/References id (threads);
//   XADR<f><addr> and XDOM<f><domain> for each address of from/to/cc/bcc (address patterns);
//   XTYPE<mime type>, XTYPE<extension> and XTYPE<kind> (extract::kind_of: "pdf", "docx"...)
//   for each attachment (type:).
// - Values: schema::k_slot_date (sortable_serialise(UTC seconds)), k_slot_size
//   (sortable_serialise(raw bytes)), k_slot_location (StoredRef::encode()), k_slot_sha256.
// - Document data: JSON, see DocData.
#include <xapian.h>

#include <string>
#include <vector>

#include "index/archive.hpp"
#include "index/mime/message.hpp"
#include "index/util/sha256.hpp"

namespace mv::index {

// What a result line needs without reading the original (document data, JSON).
struct DocData {
    std::string message_id;
    std::vector<std::string> references;  // In-Reply-To/References ids ("refs"), for threads
    std::int64_t date = 0;
    std::string from;
    std::vector<std::string> to, cc;
    std::string subject;
    std::uint64_t size = 0;
    std::string sha256;  // hex
    std::vector<Attachment> attachments;
    std::vector<Location> locations;  // with removed/removed_at once the server reported one gone
    bool broken = false;  // could not be parsed cleanly (XSTATEbroken): defects or not MIME

    std::string to_json() const;
    static DocData from_json(const std::string& s);  // tolerant: missing keys stay default
};

class DocumentBuilder {
  public:
    explicit DocumentBuilder(const std::string& stemmer);  // "none" or "" = no stemming
    // Builds terms, values (except location) and data. Thread-compatible: one per thread.
    Xapian::Document build(const ParsedMessage& msg, const Location& where, const Digest& sha,
                           const Digest& dedupe_key, std::uint64_t raw_size);

  private:
    Xapian::TermGenerator tg_;
};

// A source's flag as indexed and shown: IMAP "\\Seen" and Maildir "S" -> "seen", "F" ->
// "flagged", "R" -> "answered", "D" -> "draft", "T" -> "deleted", "P" -> "passed"; keywords
// lowercased ("$Forwarded" -> "$forwarded").
std::string flag_name(std::string_view flag);

// Terms added for a location (mailbox/folder/source/XID), shared by build() and add_location().
void add_location_terms(Xapian::Document& doc, const Location& where);
// XID<16 hex of sha256(source \0 mailbox \0 server_id)>, or "" without a server id.
std::string location_id_term(const Location& where);

}  // namespace mv::index
