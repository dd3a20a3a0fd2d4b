// Messages: parsing with errors that name the field, templates, payloads.
#include "engine/message.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace herald::engine {
namespace {

using json = nlohmann::json;

std::string Error(const json& m) {
  auto r = ParseMessage(m);
  return r.ok() ? std::string("ok") : r.status().message();
}

TEST(MessageTest, ParsesEveryFieldAndRendersTemplates) {
  auto m = ParseMessage(json::parse(R"({"form":"image_text","title":"Hi {{user.name}}",
      "body":"{{ user.profile.city }} deals, code {{vars.code}}","ttl_s":600,"priority":"transactional",
      "urgent":true,"collapse_key":"c1","idempotency_key":"i1","media":["https://x/1.png"],
      "deep_link":"app://deal","vars":{"code":"42"}})"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->form, Form::kImageText);
  EXPECT_EQ(m->ttl_s, 600u);
  EXPECT_TRUE(m->transactional());
  auto lookup = [](std::string_view name, std::string* out) {
    if (name == "user.name") *out = "Li";
    else if (name == "user.profile.city") *out = "Shenzhen";
    else return false;
    return true;
  };
  EXPECT_EQ(Render(m->title, *m, lookup), "Hi Li");
  EXPECT_EQ(Render(m->body, *m, lookup), "Shenzhen deals, code 42");
  EXPECT_EQ(Render(m->title, *m, [](std::string_view, std::string*) { return false; }), "Hi ");
  const json p = json::parse(Payload(*m, "Hi Li", "b", {"m-1", "c-1", "a1", true, 1772323200LL * kMicrosPerSecond}));
  EXPECT_EQ(p["id"], "m-1");
  EXPECT_EQ(p["campaign_id"], "c-1");
  EXPECT_EQ(p["account_id"], "a1");
  EXPECT_EQ(p["form"], "image_text");
  EXPECT_EQ(p["title"], "Hi Li");
  EXPECT_EQ(p["folded"], true);
  EXPECT_EQ(p["collapse_key"], "c1");
  EXPECT_EQ(p["expires_at"], "2026-03-01T00:00:00Z");
  EXPECT_EQ(p["media"][0], "https://x/1.png");
  EXPECT_EQ(p["deep_link"], "app://deal");
}

TEST(MessageTest, BadMessagesNameTheField) {
  EXPECT_EQ(Error(json::parse(R"({"title":"x","ttl_s":0})")), "message.ttl_s: must be an integer between 1 and 2592000");
  EXPECT_EQ(Error(json::parse(R"({"title":"x","form":"hologram"})")).substr(0, 13), "message.form:");
  EXPECT_EQ(Error(json::parse(R"({"title":"Hi {{user.shoe}}"})")).substr(0, 54),
            "message.title: unknown template variable {{user.shoe}}");
  EXPECT_EQ(Error(json::parse(R"({"body":"{{vars.x}}","vars":{"y":"1"}})")).substr(0, 50),
            "message.body: unknown template variable {{vars.x}}");
  EXPECT_EQ(Error(json::parse(R"({"title":"{{user.name"})")), "message.title: a template variable {{ is not closed");
  EXPECT_EQ(Error(json::parse(R"({"title":"x","colour":"red"})")), "message.colour: unknown field");
  EXPECT_EQ(Error(json::parse(R"({"ttl_s":5})")), "message.title: a message needs a title or a body");
  EXPECT_EQ(Error(json{{"title", "x"}, {"body", std::string(2 << 20, 'b')}}), "message.body: must be at most 8192 bytes");
  EXPECT_EQ(Error(json::parse(R"({"title":"x","priority":"asap"})")).substr(0, 17), "message.priority:");
  EXPECT_EQ(Error(json::parse("[1]")), "message: must be an object");
}

}  // namespace
}  // namespace herald::engine
