#include <gtest/gtest.h>

#include "api/router.h"
#include "core/metrics.h"

namespace herald::api {
namespace {

Result<std::string> FakeAuth(std::string_view key, bool* admin) {
  if (key == "admin-key") {
    *admin = true;
    return std::string("default");
  }
  if (key == "app-key") {
    *admin = false;
    return std::string("app2");
  }
  return Status::Unauthenticated("no");
}

struct Fixture {
  MetricsRegistry metrics;
  Router router{FakeAuth, &metrics};
  Fixture() {
    router.Add("GET", "/v1/users/{id}/features", Access::kTenant, [](HttpRequest& r, Respond respond) {
      HttpResponse resp;
      resp.body = r.tenant_id + ":" + r.params["id"];
      respond(resp);
    });
    router.Add("POST", "/v1/tenants", Access::kAdmin, [](HttpRequest&, Respond respond) {
      respond(HttpResponse{201, "application/json", "{}", {}});
    });
    router.Add("GET", "/healthz", Access::kPublic, [](HttpRequest&, Respond respond) {
      respond(HttpResponse{});
    });
  }
  HttpResponse Call(std::string method, std::string path, std::string key = "") {
    HttpRequest req;
    req.method = std::move(method);
    req.path = std::move(path);
    if (!key.empty()) req.headers.emplace_back("authorization", "Bearer " + key);
    HttpResponse out;
    router.Handle(req, [&](HttpResponse r) { out = std::move(r); });
    return out;
  }
};

TEST(RouterTest, MatchesParametersAndScopesToTheKeysTenant) {
  Fixture f;
  auto r = f.Call("GET", "/v1/users/u42/features", "app-key");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "app2:u42");
}

TEST(RouterTest, MissingOrWrongKeyIs401AndNonAdminIs403) {
  Fixture f;
  auto missing = f.Call("GET", "/v1/users/u1/features");
  EXPECT_EQ(missing.status, 401);
  EXPECT_NE(missing.body.find("\"code\":\"unauthenticated\""), std::string::npos);
  EXPECT_EQ(f.Call("GET", "/v1/users/u1/features", "wrong").status, 401);
  EXPECT_EQ(f.Call("POST", "/v1/tenants", "app-key").status, 403);
  EXPECT_EQ(f.Call("POST", "/v1/tenants", "admin-key").status, 201);
  EXPECT_EQ(f.Call("GET", "/healthz").status, 200);
}

TEST(RouterTest, UnknownRouteIs404AndWrongMethodIs405WithJsonErrors) {
  Fixture f;
  auto nf = f.Call("GET", "/v1/nothing", "admin-key");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body, R"({"error":{"code":"route_not_found","message":"no route for GET /v1/nothing"}})");
  auto na = f.Call("DELETE", "/healthz");
  EXPECT_EQ(na.status, 405);
  EXPECT_NE(na.body.find("method_not_allowed"), std::string::npos);
}

TEST(RouterTest, CountsRequestsByRouteAndStatus) {
  Fixture f;
  f.Call("GET", "/healthz");
  f.Call("GET", "/healthz");
  f.Call("GET", "/v1/users/u1/features");
  EXPECT_EQ(f.metrics.GetCounter("herald_http_requests_total", "", {{"route", "/healthz"}, {"code", "200"}}).Value(), 2u);
  EXPECT_EQ(f.metrics.GetCounter("herald_http_requests_total", "",
                                 {{"route", "/v1/users/{id}/features"}, {"code", "401"}}).Value(), 1u);
}

TEST(HttpErrorTest, StatusMapsToHttpCodesAndEscapedJson) {
  auto r = ErrorResponse(Status::NotFound("no \"x\"\n"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no \"x\"\n"}})");
  EXPECT_EQ(HttpStatusFor(Code::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(Code::kResourceExhausted), 429);
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b%2Fc", &out));
  EXPECT_EQ(out, "a b/c");
  EXPECT_FALSE(PercentDecode("bad%2", &out));
  EXPECT_FALSE(PercentDecode("bad%zz", &out));
}

}  // namespace
}  // namespace herald::api
