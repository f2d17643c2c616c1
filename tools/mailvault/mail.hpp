#pragma once
// OAuth sign-in (`connect`), `mail-test` and the run report mailed after sync / import --report.
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ingest/pipeline.hpp"
#include "ingest/smtp/mail_message.hpp"
#include "ingest/source.hpp"
#include "tools/mailvault/cli.hpp"

namespace mv::cli {

void register_connect(CLI::App& app, Context& ctx);    // cmd_connect.cpp
void register_mail_test(CLI::App& app, Context& ctx);  // cmd_mailtest.cpp

// What one source did in a run, for the report.
struct MailboxTally {
    std::uint64_t fetched = 0;          // messages the source delivered from this mailbox
    std::set<std::string> folders;
    std::uint64_t checkpoints = 0;      // checkpoint entries passed (committed with the messages)
    std::string last_checkpoint;        // the last one's key, without "cp:<source>:"
};
struct SourceRun {
    std::string source;
    std::string result;                 // ok | partial | failed
    ingest::ImportSummary summary;
    std::map<std::string, MailboxTally> mailboxes;
};
struct RunReport {
    std::string command;                // "sync" | "import"
    std::string archive;
    std::int64_t started = 0;           // unix time
    std::vector<SourceRun> sources;
    std::uint64_t archive_documents = 0;
    int exit_code = 0;
};

// OK (every source ok), FAILED (nothing archived: every source failed), PARTIAL otherwise.
std::string report_verdict(const RunReport& r);
// The report as a mail: text/plain and an HTML table readable on a phone.
ingest::smtp::MailMessage build_report(const RunReport& r, const std::string& sender, const std::vector<std::string>& to);
// Sends it to smtp.report_recipients when set; a failure is logged, never returned.
void send_run_report(const Context& ctx, const RunReport& r);

// Counts per mailbox what a source delivers (forwarding everything else).
class TallyingSource : public ingest::Source {
  public:
    TallyingSource(ingest::Source& inner, std::map<std::string, MailboxTally>& tally) : inner_(inner), tally_(tally) {}
    std::string name() const override { return inner_.name(); }
    std::optional<ingest::RawMessage> next() override;
    std::uint64_t expected_total() const override { return inner_.expected_total(); }
    bool expected_is_estimate() const override { return inner_.expected_is_estimate(); }
    void on_durable(const std::vector<std::uint64_t>& acks) override { inner_.on_durable(acks); }
    void finish() override { inner_.finish(); }
    const ingest::SourceReport& report() const override { return inner_.report(); }

  private:
    ingest::Source& inner_;
    std::map<std::string, MailboxTally>& tally_;
};

}  // namespace mv::cli
