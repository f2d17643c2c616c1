#include "support/testutil.hpp"

#include <fcntl.h>
#include <cerrno>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mv::test {

TempDir::TempDir() {
    std::random_device rd;
    auto base = std::filesystem::temp_directory_path();
    for (int i = 0; i < 100; ++i) {
        auto p = base / ("mvtest-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
        if (std::filesystem::create_directory(p)) {
            path_ = p;
            return;
        }
    }
    throw std::runtime_error("cannot create temp dir");
}

TempDir::~TempDir() {
    std::error_code ec;
    if (!std::getenv("MV_KEEP_TEMP")) std::filesystem::remove_all(path_, ec);
}

std::filesystem::path source_dir() { return MV_SOURCE_DIR; }
std::string mailvault_binary() { return MV_BINARY; }

std::filesystem::path data_dir() {
    if (const char* d = std::getenv("MV_DATA_DIR"); d && *d) return d;
    return source_dir() / "data";
}

std::filesystem::path corpus_dir() {
    if (const char* d = std::getenv("MV_CORPUS_DIR"); d && *d) return d;
    return source_dir() / ".." / "shared" / "corpus";
}

bool servers_required() {
    const char* v = std::getenv("MV_REQUIRE_SERVERS");
    return v && std::string(v) == "1";
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << bytes;
}

RunResult run_program(const std::vector<std::string>& argv, const std::string& stdin_text,
                      const std::vector<std::string>& env) {
    RunResult r;
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) return r;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
        posix_spawn_file_actions_addclose(&fa, fd);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (const auto& kv : env) {
        auto key = kv.substr(0, kv.find('=') + 1);
        std::erase_if(envs, [&](const std::string& s) { return s.rfind(key, 0) == 0; });
        envs.push_back(kv);
    }
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(err_pipe[0]);
        r.err = "spawn failed";
        return r;
    }
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < stdin_text.size()) {
            ssize_t n = write(in_pipe[1], stdin_text.data() + off, stdin_text.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        close(in_pipe[1]);
    });
    auto drain = [](int fd, std::string& into) {
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) into.append(buf, static_cast<std::size_t>(n));
        close(fd);
    };
    std::thread err_reader(drain, err_pipe[0], std::ref(r.err));
    drain(out_pipe[0], r.out);
    err_reader.join();
    writer.join();
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

RunResult run_mailvault(const std::vector<std::string>& args, const std::string& stdin_text,
                        const std::vector<std::string>& env) {
    std::vector<std::string> argv{mailvault_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_program(argv, stdin_text, env);
}

RunResult run_mailvault_tty(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::vector<std::string> argv{mailvault_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<std::string> envs(env);
    RunResult r;
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) return r;
    if (pid == 0) {
        for (auto& kv : envs) ::putenv(kv.data());
        ::execv(cargv[0], cargv.data());
        _exit(127);
    }
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EIO once the child has closed the terminal
        r.out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(master);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

bool unpack_corpus(const std::string& mbox_name, const std::filesystem::path& dest, int count) {
    auto script = corpus_dir() / "unpack-maildir";
    auto mbox = corpus_dir() / mbox_name;
    if (!std::filesystem::exists(script) || !std::filesystem::exists(mbox)) return false;
    std::vector<std::string> argv{"/usr/bin/python3", script.string()};
    if (count > 0) {
        argv.push_back("--count");
        argv.push_back(std::to_string(count));
    }
    argv.push_back(mbox.string());
    argv.push_back(dest.string());
    return run_program(argv).exit_code == 0;
}

}  // namespace mv::test
