// graph-seq-client: the benchmark's reference client. Mailbox after mailbox, folder after folder,
// 25 messages per page ($top=25, like python-o365's default), each $value fetched sequentially.
// Honours Retry-After on 429/503. Prints one JSON line: messages, requests, 429s, seconds.
#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using json = nlohmann::json;

namespace {

struct Args {
    std::string graph_url, authority_url, tenant, client_id, client_secret;
    std::vector<std::string> mailboxes;
    long page = 25;
    long max_messages = 0;
    double max_seconds = 0;
};

long requests = 0, throttled = 0;
CURL* curl = nullptr;

std::size_t on_body(char* d, std::size_t s, std::size_t n, void* u) {
    static_cast<std::string*>(u)->append(d, s * n);
    return s * n;
}
std::size_t on_header(char* d, std::size_t s, std::size_t n, void* u) {
    std::string line(d, s * n);
    if (line.size() > 12 && strncasecmp(line.c_str(), "retry-after:", 12) == 0) *static_cast<long*>(u) = std::atol(line.c_str() + 12);
    return s * n;
}

long perform(const std::string& url, const std::string* post, const std::string& token, std::string& body) {
    for (;;) {
        body.clear();
        long retry_after = -1;
        curl_slist* h = nullptr;
        if (!token.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + token).c_str());
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &retry_after);
        if (post) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post->c_str());
        ++requests;
        CURLcode rc = curl_easy_perform(curl);
        curl_slist_free_all(h);
        if (rc != CURLE_OK) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            continue;
        }
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 429 || status == 503) {
            if (status == 429) ++throttled;
            std::this_thread::sleep_for(std::chrono::seconds(retry_after > 0 ? retry_after : 2));
            continue;
        }
        return status;
    }
}

std::string enc(const std::string& s) {
    char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
    std::string out(e);
    curl_free(e);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--graph-url") a.graph_url = v;
        else if (k == "--authority-url") a.authority_url = v;
        else if (k == "--tenant") a.tenant = v;
        else if (k == "--client-id") a.client_id = v;
        else if (k == "--client-secret") a.client_secret = v;
        else if (k == "--mailbox") a.mailboxes.push_back(v);
        else if (k == "--page") a.page = std::stol(v);
        else if (k == "--max-messages") a.max_messages = std::stol(v);
        else if (k == "--max-seconds") a.max_seconds = std::stod(v);
        else {
            std::cerr << "unknown option " << k << "\n";
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    std::string body;
    std::string form = "grant_type=client_credentials&client_id=" + enc(a.client_id) + "&client_secret=" + enc(a.client_secret) +
                       "&scope=" + enc(a.graph_url + "/.default");
    if (perform(a.authority_url + "/" + a.tenant + "/oauth2/v2.0/token", &form, "", body) != 200) {
        std::cerr << "token request failed\n";
        return 3;
    }
    std::string token = json::parse(body)["access_token"];
    long messages = 0;
    unsigned long long bytes = 0;
    bool stop = false;
    for (const auto& mb : a.mailboxes) {
        if (stop) break;
        // folders, recursively
        std::vector<std::string> todo = {a.graph_url + "/v1.0/users/" + enc(mb) + "/mailFolders?%24top=25"};
        std::vector<std::string> folders;
        while (!todo.empty()) {
            std::string url = todo.back();
            todo.pop_back();
            while (!url.empty()) {
                if (perform(url, nullptr, token, body) != 200) break;
                auto j = json::parse(body);
                for (auto& f : j["value"]) {
                    if (f.value("@odata.type", "") == "#microsoft.graph.mailSearchFolder") continue;
                    folders.push_back(f["id"]);
                    if (f.value("childFolderCount", 0) > 0)
                        todo.push_back(a.graph_url + "/v1.0/users/" + enc(mb) + "/mailFolders/" + enc(f["id"]) + "/childFolders?%24top=25");
                }
                url = j.value("@odata.nextLink", "");
            }
        }
        for (const auto& fid : folders) {
            if (stop) break;
            std::string url = a.graph_url + "/v1.0/users/" + enc(mb) + "/mailFolders/" + enc(fid) +
                              "/messages?%24top=" + std::to_string(a.page) + "&%24select=id,receivedDateTime";
            while (!url.empty() && !stop) {
                if (perform(url, nullptr, token, body) != 200) break;
                auto j = json::parse(body);
                std::string next = j.value("@odata.nextLink", "");
                for (auto& m : j["value"]) {
                    std::string mime;
                    if (perform(a.graph_url + "/v1.0/users/" + enc(mb) + "/messages/" + enc(m["id"]) + "/$value", nullptr, token, mime) == 200) {
                        ++messages;
                        bytes += mime.size();
                    }
                    if ((a.max_messages && messages >= a.max_messages) || (a.max_seconds > 0 && elapsed() >= a.max_seconds)) {
                        stop = true;
                        break;
                    }
                }
                url = next;
            }
        }
    }
    json out = {{"messages", messages}, {"bytes", bytes}, {"requests", requests}, {"throttled", throttled}, {"seconds", elapsed()}};
    std::cout << out.dump() << std::endl;
    curl_easy_cleanup(curl);
    return 0;
}
