#include "core/status.h"

#include <gtest/gtest.h>

#include "core/base64.h"
#include "core/ids.h"

namespace herald {

TEST(StatusTest, OkAndErrorCarryCodeAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::InvalidArgument("port must be 0..65535");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "invalid_argument: port must be 0..65535");
}

Result<int> Half(int v) {
  if (v % 2) return Status::InvalidArgument("odd");
  return v / 2;
}

Status UseHalf(int v, int* out) {
  auto r = Half(v);
  HERALD_RETURN_IF_ERROR(r.status());
  *out = *r;
  return Status::Ok();
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  int out = 0;
  EXPECT_TRUE(UseHalf(8, &out).ok());
  EXPECT_EQ(out, 4);
  Status s = UseHalf(3, &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(out, 4);
}

TEST(IdsTest, RejectsEmptyLongAndTopicUnsafeIds) {
  EXPECT_TRUE(ValidateId("user_id", "u-1.x_Y@z").ok());
  EXPECT_FALSE(ValidateId("user_id", "").ok());
  EXPECT_FALSE(ValidateId("user_id", std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateId("user_id", std::string(128, 'a')).ok());
  for (const char* bad : {"a/b", "a+b", "a#b", "a b", "a\"b", "a\nb"}) {
    Status s = ValidateId("user_id", bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("user_id"), std::string::npos);
  }
}

TEST(Base64Test, UrlAlphabetWithoutPadding) {
  auto enc = [](std::string_view s) {
    return Base64UrlEncode(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg");
  EXPECT_EQ(enc("fo"), "Zm8");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg");
  EXPECT_EQ(enc("\xfb\xff"), "-_8");  // '+' and '/' become '-' and '_'
}

}  // namespace herald
