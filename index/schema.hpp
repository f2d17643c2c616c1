#pragma once
// The one table of Xapian term prefixes and value slots; every layer reads it from here.
#include <array>
#include <string_view>

namespace mv::schema {

enum class FieldKind { text, boolean };

struct Field {
    std::string_view name;    // query field, e.g. "from"
    std::string_view prefix;  // Xapian term prefix
    FieldKind kind;
    bool in_free_text;        // plain words (no field) search this prefix too
};

// Text fields are indexed with positions (phrases work); boolean ones as whole terms.
inline constexpr std::array k_fields{
    Field{"from", "F", FieldKind::text, true},
    Field{"to", "T", FieldKind::text, true},
    Field{"cc", "C", FieldKind::text, true},
    Field{"bcc", "XBCC", FieldKind::text, true},
    Field{"subject", "S", FieldKind::text, true},
    Field{"body", "B", FieldKind::text, false},  // plain words search it too (see builder.hpp)
    Field{"attachment", "XA", FieldKind::text, true},   // attachment file names
    Field{"atext", "XAT", FieldKind::text, true},       // text inside attachments (index/extract)
    Field{"type", "XTYPE", FieldKind::boolean, false},  // attachment types: type:pdf, type:text/csv
    Field{"mailbox", "XMB", FieldKind::boolean, false},
    Field{"folder", "XFD", FieldKind::boolean, false},
    Field{"source", "XSR", FieldKind::boolean, false},
    Field{"msgid", "XMID", FieldKind::boolean, false},
    Field{"has", "XHAS", FieldKind::boolean, false},
    Field{"is", "XSTATE", FieldKind::boolean, false},   // is:broken, is:removed, is:unread, is:flagged ...
    Field{"flag", "XFLAG", FieldKind::boolean, false},  // flag:seen, flag:flagged, flag:$label ...
    Field{"thread", "", FieldKind::boolean, false},     // thread:DOCNO, thread:<msgid> (query side only)
};

// Unique terms (not query fields).
inline constexpr std::string_view k_dedupe_prefix = "Q";   // Q<hex of dedupe key>
inline constexpr std::string_view k_sha_prefix = "XSHA";   // XSHA<hex sha256 of original>
inline constexpr std::string_view k_broken_term = "XSTATEbroken";
// XID<16 hex of sha256(source \0 mailbox \0 server id)>: finds a location's document.
inline constexpr std::string_view k_location_id_prefix = "XID";
inline constexpr std::string_view k_removed_term = "XSTATEremoved";  // a location was removed on the server
// XFLAG<name>: a flag some location reported at import/sync, normalised by index::flag_name()
// ("\\Seen" and Maildir "S" -> "seen", "\\Flagged"/"F" -> "flagged", keywords lowercased).
inline constexpr std::string_view k_flag_prefix = "XFLAG";
// XREF<id>: a Message-ID named by In-Reply-To or References (without <>, lowercased), so
// a thread is the closure of XMID/XREF terms (see query/thread).
inline constexpr std::string_view k_ref_prefix = "XREF";
// Address terms of the address fields (lowercased addr-spec), and their domains, for address
// patterns: from:*@example.org is XDOMFexample.org, from:alice@* the wildcard XADRFalice@*.
struct AddressField {
    std::string_view name;     // "from"
    std::string_view address;  // XADRF<local@domain>
    std::string_view domain;   // XDOMF<domain>
};
inline constexpr std::array k_address_fields{
    AddressField{"from", "XADRF", "XDOMF"},
    AddressField{"to", "XADRT", "XDOMT"},
    AddressField{"cc", "XADRC", "XDOMC"},
    AddressField{"bcc", "XADRB", "XDOMB"},
};
constexpr const AddressField* address_field(std::string_view name) {
    for (const auto& f : k_address_fields)
        if (f.name == name) return &f;
    return nullptr;
}

// Value slots.
enum Slot : unsigned {
    k_slot_date = 0,       // sortable_serialise(seconds since epoch, UTC)
    k_slot_size = 1,       // sortable_serialise(raw bytes)
    k_slot_location = 2,   // originals store location (binary)
    k_slot_sha256 = 3,     // raw SHA-256 of the original (32 bytes)
};

constexpr const Field* field(std::string_view name) {
    for (const auto& f : k_fields)
        if (f.name == name) return &f;
    return nullptr;
}

constexpr std::string_view prefix_of(std::string_view name) {
    const Field* f = field(name);
    return f ? f->prefix : std::string_view{};
}

}  // namespace mv::schema
