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
    auto port = load_config(dir / "port.toml");
    ASSERT_TRUE(port);
    auto p = port->source("x")->get_int("port", 0);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("port"), std::string::npos);
}

}  // namespace
}  // namespace mv
