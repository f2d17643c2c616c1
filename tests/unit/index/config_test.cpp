#include "index/config/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "support/testutil.hpp"

namespace mv {
namespace {

TEST(Config, ExampleConfigLoads) {
    auto c = load_config(test::data_dir() / "mailvault.example.toml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->stemmer, "english");
    ASSERT_EQ(c->sources.size(), 4u);
    const SourceConfig* imap = c->source("mailhost");
    ASSERT_NE(imap, nullptr);
    EXPECT_EQ(imap->type, "imap");
    EXPECT_EQ(*imap->get_int("port", 0), 993);
    EXPECT_EQ(*imap->get_bool("trust_all_certificates", true), false);
    EXPECT_EQ(imap->get_list("exclude"), (std::vector<std::string>{"Trash", "Junk*"}));
    EXPECT_EQ(c->source("office")->get_list("mailboxes"), (std::vector<std::string>{"*"}));
}

TEST(Config, SecretsResolveWithoutLeaking) {
    test::TempDir dir;
    test::write_file(dir / "pw", "file-secret\n");
    std::filesystem::permissions(dir / "pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    test::write_file(dir / "c.toml",
                     "[[source]]\nname = \"a\"\ntype = \"imap\"\npassword_env = \"MV_TEST_PW\"\n"
                     "[[source]]\nname = \"b\"\ntype = \"imap\"\npassword_file = \"" + (dir / "pw").string() + "\"\n"
                     "[[source]]\nname = \"c\"\ntype = \"imap\"\n");
    auto c = load_config(dir / "c.toml");
    ASSERT_TRUE(c);
    ::setenv("MV_TEST_PW", "env-secret", 1);
    EXPECT_EQ(*c->source("a")->secret("password"), "env-secret");
    ::unsetenv("MV_TEST_PW");
    auto missing = c->source("a")->secret("password");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("MV_TEST_PW"), std::string::npos);
    EXPECT_EQ(missing.error().message.find("env-secret"), std::string::npos);
    EXPECT_EQ(*c->source("b")->secret("password"), "file-secret");
    auto none = c->source("c")->secret("password");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, Error::Kind::usage);
}

TEST(Config, ErrorsNameFileLineAndKey) {
    test::TempDir dir;
    test::write_file(dir / "bad.toml", "[archive]\npath = \"x\"\nstemmer = \n");
    auto bad = load_config(dir / "bad.toml");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("bad.toml:3"), std::string::npos) << bad.error().message;
    test::write_file(dir / "dup.toml", "[[source]]\nname=\"x\"\ntype=\"imap\"\n[[source]]\nname=\"x\"\ntype=\"pop3\"\n");
    auto dup = load_config(dir / "dup.toml");
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().message.find("'x' is used twice"), std::string::npos);
    test::write_file(dir / "port.toml", "[[source]]\nname=\"x\"\ntype=\"imap\"\nport=\"abc\"\n");
    auto port = load_config(dir / "port.toml");  // a wrong type is found when the file is read
    ASSERT_FALSE(port);
    EXPECT_NE(port.error().message.find("port.toml:4: source 'x' key 'port' must be a whole number"), std::string::npos)
        << port.error().message;
    test::write_file(dir / "port2.toml", "[[source]]\nname=\"x\"\ntype=\"imap\"\nport=\"993\"\n");
    auto port2 = load_config(dir / "port2.toml");  // digits in quotes are still a number
    ASSERT_TRUE(port2) << port2.error().message;
    EXPECT_EQ(*port2->source("x")->get_int("port", 0), 993);
}

Result<Config> load_text(const test::TempDir& dir, const std::string& text) {
    test::write_file(dir / "m.toml", text);
    std::filesystem::permissions(dir / "m.toml", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return load_config(dir / "m.toml");
}

std::string error_of(const test::TempDir& dir, const std::string& text) {
    auto c = load_text(dir, text);
    return c ? std::string("(loaded)") : c.error().message;
}

TEST(ConfigValidation, UnknownKeysSuggestTheNearestKnownOne) {
    test::TempDir dir;
    EXPECT_NE(error_of(dir, "[archive]\nstemer = \"english\"\n").find("m.toml:2: unknown key 'stemer' in [archive]; did you mean 'stemmer'?"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "[archiv]\npath = \"a\"\n").find("m.toml:1: unknown table [archiv]; did you mean [archive]?"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "[links]\nbase_ur = \"x\"\n").find("did you mean 'base_url'?"), std::string::npos);
    EXPECT_NE(error_of(dir, "[[source]]\nname = \"a\"\ntype = \"imap\"\npasword_env = \"X\"\n").find("did you mean 'password_env'?"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "[serve]\nsession_idel = \"1m\"\n").find("did you mean 'session_idle'?"), std::string::npos);
    EXPECT_NE(error_of(dir, "[users.bob]\nrole = \"user\"\nmailbox = [\"a\"]\n").find("users.bob; did you mean 'mailboxes'?"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "[[source]]\nname = \"a\"\ntype = \"imapp\"\n").find("m.toml:3: source 'a' type 'imapp' is unknown; did you mean 'imap'?"),
              std::string::npos) << error_of(dir, "[[source]]\nname = \"a\"\ntype = \"imapp\"\n");
    EXPECT_NE(error_of(dir, "[archive]\nzzzzzzzzzz = 1\n").find("unknown key 'zzzzzzzzzz' in [archive]; remove it"),
              std::string::npos);
}

TEST(ConfigValidation, WrongTypesNameKeyAndFix) {
    test::TempDir dir;
    EXPECT_NE(error_of(dir, "[archive]\nstemmer = 1\n").find("m.toml:2: [archive] key 'stemmer' must be a string in quotes, e.g. stemmer = \"...\""),
              std::string::npos) << error_of(dir, "[archive]\nstemmer = 1\n");
    EXPECT_NE(error_of(dir, "[archive]\npath = 5\n").find("key 'path' must be a string"), std::string::npos);
    EXPECT_NE(error_of(dir, "[serve]\nthreads = \"many\"\n").find("key 'threads' must be a whole number"), std::string::npos);
    EXPECT_NE(error_of(dir, "[[source]]\nname = \"a\"\ntype = \"imap\"\ntrust_all_certificates = \"yes\"\n").find("must be true or false"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "[[source]]\nname = \"a\"\ntype = \"maildir\"\nfolders = [1, 2]\n").find("a string or a list of strings"),
              std::string::npos);
    EXPECT_NE(error_of(dir, "archive = \"x\"\n").find("'archive' must be a table"), std::string::npos);
    // Every documented form loads.
    auto ok = load_text(dir, "[archive]\npath = \"a\"\nstemmer = \"none\"\ntimezone = \"Europe/Berlin\"\n[sync]\ndeadline = \"1h30m\"\n"
                             "[[source]]\nname = \"a\"\ntype = \"imap\"\nport = 993\nfolders = \"INBOX\"\ntrust_all_certificates = false\n");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->sync_deadline, "1h30m");
}

TEST(ConfigValidation, ServeCachesAreBounded) {
    test::TempDir dir;
    auto c = load_text(dir, "[serve]\nblock_cache = 32\nresult_cache = 10\n");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->serve_block_cache, 32);
    EXPECT_EQ(c->serve_result_cache, 10);
    auto defaults = load_text(dir, "[serve]\n");
    ASSERT_TRUE(defaults) << defaults.error().message;
    EXPECT_EQ(defaults->serve_block_cache, 8);
    EXPECT_TRUE(load_text(dir, "[serve]\nblock_cache = 0\n"));
    EXPECT_NE(error_of(dir, "[serve]\nblock_cache = -1\n").find("serve.block_cache: use 0 to 4096"), std::string::npos);
    EXPECT_NE(error_of(dir, "[serve]\nblock_cache = 5000\n").find("serve.block_cache: use 0 to 4096"), std::string::npos);
    EXPECT_NE(error_of(dir, "[serve]\nblock_cache = \"big\"\n").find("key 'block_cache' must be a whole number"), std::string::npos);
}

TEST(ConfigValidation, SecretInAGroupReadableFileIsRefused) {
    test::TempDir dir;
    const std::string text = "[[source]]\nname = \"a\"\ntype = \"imap\"\npassword = \"hunter2\"\n";
    test::write_file(dir / "open.toml", text);
    std::filesystem::permissions(dir / "open.toml", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                                        std::filesystem::perms::group_read);
    auto c = load_config(dir / "open.toml");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("open.toml:1: holds a password or token but is readable by group or others; run: chmod 600"),
              std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.find("hunter2"), std::string::npos);
    EXPECT_TRUE(load_text(dir, text));  // 0600: fine
    // Without a secret inside, a readable config is fine.
    test::write_file(dir / "plain.toml", "[archive]\npath = \"a\"\n");
    std::filesystem::permissions(dir / "plain.toml", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                                         std::filesystem::perms::others_read);
    EXPECT_TRUE(load_config(dir / "plain.toml"));
}

TEST(ConfigValidation, SecretFilesMustExistAndBePrivate) {
    test::TempDir dir;
    auto c = load_text(dir, "[[source]]\nname = \"a\"\ntype = \"imap\"\npassword_file = \"" + (dir / "pw").string() +
                                "\"\n[[source]]\nname = \"b\"\ntype = \"imap\"\npassword_env = \"MV_CFG_UNSET\"\n");
    ASSERT_TRUE(c) << c.error().message;
    auto missing = c->source("a")->check_secrets();
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("password_file " + (dir / "pw").string() + ": No such file"), std::string::npos)
        << missing.error().message;
    test::write_file(dir / "pw", "pw\n");
    std::filesystem::permissions(dir / "pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                                 std::filesystem::perms::others_read);
    auto open = c->source("a")->check_secrets();
    ASSERT_FALSE(open);
    EXPECT_NE(open.error().message.find("is readable by group or others; run: chmod 600"), std::string::npos);
    std::filesystem::permissions(dir / "pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    EXPECT_TRUE(c->source("a")->check_secrets());
    ::unsetenv("MV_CFG_UNSET");
    auto env = c->source("b")->check_secrets();
    ASSERT_FALSE(env);
    EXPECT_NE(env.error().message.find("MV_CFG_UNSET, which is not set"), std::string::npos);
}

TEST(ConfigValidation, Durations) {
    EXPECT_EQ(*parse_duration_seconds("3600"), 3600);
    EXPECT_EQ(*parse_duration_seconds("3600s"), 3600);
    EXPECT_EQ(*parse_duration_seconds("90m"), 5400);
    EXPECT_EQ(*parse_duration_seconds("2h"), 7200);
    EXPECT_EQ(*parse_duration_seconds("1d"), 86400);
    EXPECT_EQ(*parse_duration_seconds("1h30m"), 5400);
    for (const char* bad : {"", "soon", "1x", "1h30", "0s", "-5m", "h"}) EXPECT_FALSE(parse_duration_seconds(bad)) << bad;
}

}  // namespace
}  // namespace mv
