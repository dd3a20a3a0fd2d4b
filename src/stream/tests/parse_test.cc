// ParseEvents / ParseEvent: JSON arrays and NDJSON, partial acceptance, and the
// exact reason given for each rejected event.
#include "stream/parse.h"

#include <gtest/gtest.h>

#include "core/time_format.h"

namespace herald::stream {

void PrintTo(const Rejected& r, std::ostream* os) {
  *os << "{" << r.index << ", " << r.error << "}";
}

namespace {

constexpr const char* kOpen =
    R"({"user_id":"u1","type":"app_open","ts":"2026-01-05T08:00:00+08:00"})";

// The reason ParseEvent gives for one event object.
std::string Reject(const std::string& json) {
  Result<Event> r = ParseEvent(json, "default");
  EXPECT_FALSE(r.ok()) << json;
  return r.ok() ? "" : r.status().message();
}

// Wraps members into an event with valid user_id/type/ts, e.g. Ev(R"("attrs":1)").
std::string Ev(const std::string& extra, const std::string& type = "app_open") {
  return R"({"user_id":"u1","type":")" + type + R"(","ts":1767571200)" +
         (extra.empty() ? "" : "," + extra) + "}";
}

TEST(ParseEventTest, ReadsEveryField) {
  Result<Event> r = ParseEvent(
      R"({"tenant":"default","user_id":"u1","type":"read","ts":"2026-01-05T08:00:00+08:00",
          "account_id":"a1","message_id":"m1","campaign_id":"c1",
          "attrs":{"item":"art-9", "tags":["sports","nba"], "category":"news",
                   "score": 1.5e0, "n": -3, "big": 18446744073709551615, "ok": true,
                   "none": null, "nested": {"a": [1, "x\n\"y\""]}}})",
      "default");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Event& e = *r;
  EXPECT_EQ(e.tenant, "default");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.type, EventType::kRead);
  EXPECT_EQ(e.ts, ParseIsoTime("2026-01-05T00:00:00Z").value());
  EXPECT_EQ(e.account_id, "a1");
  EXPECT_EQ(e.message_id, "m1");
  EXPECT_EQ(e.campaign_id, "c1");
  EXPECT_EQ(e.item, "art-9");
  EXPECT_EQ(e.tags, (std::vector<std::string>{"sports", "nba", "news"}));
  EXPECT_EQ(e.attrs,
            R"({"item":"art-9","tags":["sports","nba"],"category":"news","score":1.5,"n":-3,)"
            R"("big":18446744073709551615,"ok":true,"none":null,"nested":{"a":[1,"x\n\"y\""]}})");
  EXPECT_FALSE(e.lat.has_value());
}

TEST(ParseEventTest, TimeIsIsoWithZoneOrUnixSeconds) {
  EXPECT_EQ(ParseEvent(Ev(""), "t")->ts, 1767571200LL * kMicrosPerSecond);
  auto frac = ParseEvent(R"({"user_id":"u1","type":"app_open","ts":1767571200.25})", "t");
  EXPECT_EQ(frac->ts, 1767571200LL * kMicrosPerSecond + 250000);
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open","ts":"2026-01-05T08:00:00"})"),
            "ts: invalid time \"2026-01-05T08:00:00\": missing zone (Z or +HH:MM)");
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open","ts":1767571200000})"),
            "ts must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z");
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open","ts":true})"),
            "ts must be an ISO-8601 string with a zone or unix seconds");
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open"})"), "ts is required");
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open","ts":null})"), "ts is required");
}

TEST(ParseEventTest, RequiredFieldsAndTypes) {
  EXPECT_EQ(Reject(R"({"type":"app_open","ts":1767571200})"), "user_id is required");
  EXPECT_EQ(Reject(R"({"user_id":null,"type":"app_open","ts":1767571200})"), "user_id is required");
  EXPECT_EQ(Reject(R"({"user_id":7,"type":"app_open","ts":1767571200})"),
            "user_id must be a string");
  EXPECT_EQ(Reject(R"({"user_id":"","type":"app_open","ts":1767571200})"),
            "user_id must not be empty");
  EXPECT_EQ(Reject(R"({"user_id":"u1","ts":1767571200})"), "type is required");
  EXPECT_EQ(Reject(Ev("", "app_close")), "type \"app_close\" is not an event type");
  for (const char* fact : {"queued", "expired", "refused", "online", "offline"}) {
    EXPECT_EQ(Reject(Ev("", fact)), std::string("type \"") + fact +
                                        "\" is reported by herald's gateway and cannot be ingested");
  }
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":["read"],"ts":1767571200})"), "type must be a string");
  EXPECT_EQ(Reject(Ev(R"("account_id":{"id":"a1"})")), "account_id must be a string");
  EXPECT_EQ(Reject(Ev(R"("message_id":")" + std::string(129, 'm') + "\"")),
            "message_id is longer than 128 bytes");
  EXPECT_TRUE(ParseEvent(Ev(R"("account_id":null,"attrs":null)"), "t").ok());
}

TEST(ParseEventTest, UnknownAndDuplicateFieldsAreRejected) {
  EXPECT_EQ(Reject(Ev(R"("event_id":"e1")")), "unknown field \"event_id\"");
  EXPECT_EQ(Reject(Ev(R"("type":"read")")), "duplicate field \"type\"");
  EXPECT_EQ(Reject("[1,2]"), "event must be a JSON object");
  EXPECT_EQ(Reject("\"app_open\""), "event must be a JSON object");
}

TEST(ParseEventTest, TenantInTheBodyMustMatchTheCaller) {
  EXPECT_TRUE(ParseEvent(Ev(R"("tenant":"acme")"), "acme").ok());
  EXPECT_EQ(Reject(Ev(R"("tenant":"other")")),
            "tenant \"other\" does not match the authenticated tenant");
}

TEST(ParseEventTest, AttrsRules) {
  EXPECT_EQ(Reject(Ev(R"("attrs":[1])")), "attrs must be an object");
  EXPECT_EQ(Reject(Ev(R"("attrs":"{}")")), "attrs must be an object");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"lat":"39.9","lng":116.4})", "location")),
            "attrs.lat must be a number");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"lng":116.4})", "location")),
            "attrs.lat is required for a location event");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"lat":39.9})", "location")),
            "attrs.lng is required for a location event");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"lat":91,"lng":116.4})", "location")),
            "attrs.lat must be a number between -90 and 90");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"lat":39.9,"lng":-181})", "location")),
            "attrs.lng must be a number between -180 and 180");
  EXPECT_EQ(Reject(Ev("", "read")), "attrs.item is required for a read event");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"item":42})", "read")), "attrs.item must be a string");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"tags":"sports"})")), "attrs.tags must be an array of strings");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"tags":["a",1]})")), "attrs.tags must be an array of strings");
  EXPECT_EQ(Reject(Ev(R"("attrs":{"category":["a"]})")), "attrs.category must be a string");
  // The event is level 0 and attrs level 1: seven more levels fit, eight do not.
  EXPECT_EQ(Reject(Ev(R"("attrs":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":[1]}}}}}}}})")),
            "attrs nests deeper than 8 levels");
  EXPECT_TRUE(
      ParseEvent(Ev(R"("attrs":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}})"), "t").ok());
  EXPECT_EQ(Reject(Ev(R"("attrs":{"s":")" + std::string(5000, 'x') + "\"}")),
            "attrs is longer than 4096 bytes");
  Result<Event> loc =
      ParseEvent(Ev(R"("attrs":{"lat":39.9,"lng":116}, "acc": 5)", "location"), "t");
  EXPECT_EQ(loc.status().message(), "unknown field \"acc\"");
  loc = ParseEvent(Ev(R"("attrs":{"lat":39.9,"lng":116})", "location"), "t");
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(*loc->lat, 39.9);
  EXPECT_EQ(*loc->lng, 116.0);
  EXPECT_EQ(loc->attrs, R"({"lat":39.9,"lng":116})");
}

TEST(ParseEventTest, BrokenJsonGivesTheByteOffset) {
  EXPECT_EQ(Reject(R"({"user_id":"u1","type":"app_open",})"),
            "invalid JSON at byte 34: expected a string key");
  EXPECT_EQ(Reject(R"({"user_id":"u1" "type":"app_open"})"),
            "invalid JSON at byte 16: expected ',' or '}'");
  EXPECT_EQ(Reject(R"({"user_id":"u1"} x)"),
            "invalid JSON at byte 17: trailing characters after the JSON value");
  EXPECT_EQ(Reject(R"({"user_id":"u1)"), "invalid JSON at byte 14: unexpected end of input");
  EXPECT_EQ(Reject("{\"user_id\":\"u\xff\"}"), "invalid JSON at byte 13: invalid UTF-8");
  EXPECT_EQ(Reject(R"({"a":tru})"), "invalid JSON at byte 5: invalid literal");
}

TEST(ParseEventsTest, ArrayAcceptsValidEventsNextToRejectedOnes) {
  std::string body = std::string("[") + kOpen + ",\n" + Ev(R"("attrs":{"lat":1})", "location") +
                     ",\n" + Ev(R"("color":"red")") + ",\n" + Ev("", "sent") + "]";
  ParsedBatch b = ParseEvents(body, BatchFormat::kJsonArray, "default");
  ASSERT_FALSE(b.fatal) << *b.fatal;
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].type, EventType::kAppOpen);
  EXPECT_EQ(b.events[1].type, EventType::kSent);
  EXPECT_EQ(b.events[1].tenant, "default");
  EXPECT_EQ(b.rejected, (std::vector<Rejected>{{1, "attrs.lng is required for a location event"},
                                               {2, "unknown field \"color\""}}));
}

TEST(ParseEventsTest, BrokenArrayIsRefusedWholeWithPosition) {
  std::string body = std::string("[") + kOpen + "," + kOpen + ",{\"user_id\":}]";
  ParsedBatch b = ParseEvents(body, BatchFormat::kJsonArray, "default");
  ASSERT_TRUE(b.fatal);
  EXPECT_EQ(*b.fatal,
            "invalid JSON at byte " + std::to_string(body.size() - 2) + ": expected a value");
  EXPECT_TRUE(b.events.empty());
  EXPECT_TRUE(b.rejected.empty());
  b = ParseEvents(std::string(kOpen), BatchFormat::kJsonArray, "default");
  EXPECT_EQ(b.fatal, "the body must be a JSON array of events");
  b = ParseEvents("", BatchFormat::kJsonArray, "default");
  EXPECT_EQ(b.fatal, "invalid JSON at byte 0: unexpected end of input");
  b = ParseEvents(" [ ] ", BatchFormat::kJsonArray, "default");
  EXPECT_FALSE(b.fatal);
  EXPECT_TRUE(b.events.empty());
}

TEST(ParseEventsTest, NdjsonRejectsLinesIndependently) {
  // Line 2 is blank and line 4 is broken JSON: both are counted in the indexes.
  std::string body = std::string(kOpen) + "\n" + Ev(R"("ts":1)") + "\r\n  \n" + Ev("", "opened") +
                     "\r\n" + "{\"user_id\":\"u2\",\n" + Ev("", "clicked");
  ParsedBatch b = ParseEvents(body, BatchFormat::kNdjson, "default");
  ASSERT_FALSE(b.fatal);
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].type, EventType::kAppOpen);
  EXPECT_EQ(b.events[1].type, EventType::kOpened);
  EXPECT_EQ(b.events[2].type, EventType::kClicked);
  EXPECT_EQ(b.rejected,
            (std::vector<Rejected>{{1, "duplicate field \"ts\""},
                                   {4, "invalid JSON at byte 16: unexpected end of input"}}));
}

TEST(ParseEventsTest, NdjsonLinesDoNotReadIntoTheirNeighbours) {
  // A line cut short must fail even though the next line would complete it.
  std::string body =
      "{\"user_id\":\"u1\",\"type\":\"app_open\",\"ts\":17675712\n00}\n" + std::string(kOpen);
  ParsedBatch b = ParseEvents(body, BatchFormat::kNdjson, "t");
  ASSERT_EQ(b.events.size(), 1u);
  ASSERT_EQ(b.rejected.size(), 2u);
  EXPECT_EQ(b.rejected[0].index, 0u);
  EXPECT_EQ(b.rejected[1].index, 1u);
}

TEST(ParseEventsTest, TooManyEventsRefusesTheBatch) {
  std::string ndjson = std::string(kOpen) + "\n\n" + kOpen + "\n" + kOpen + "\n";
  EXPECT_FALSE(ParseEvents(ndjson, BatchFormat::kNdjson, "t", 3).fatal);
  ParsedBatch b = ParseEvents(ndjson, BatchFormat::kNdjson, "t", 2);
  EXPECT_EQ(b.fatal, "a batch may hold at most 2 events");
  EXPECT_TRUE(b.events.empty());
  std::string array = std::string("[") + kOpen + "," + kOpen + "," + kOpen + "]";
  EXPECT_EQ(ParseEvents(array, BatchFormat::kJsonArray, "t", 2).fatal,
            "a batch may hold at most 2 events");
  EXPECT_EQ(ParseEvents(array, BatchFormat::kJsonArray, "t", 3).events.size(), 3u);
}

}  // namespace
}  // namespace herald::stream
