#include "service/tls/public_suffix.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::tls {
namespace {

constexpr char kList[] = R"(// a comment
com
co.uk
*.ck
!www.ck
// ===BEGIN PRIVATE DOMAINS===
github.io
)";

TEST(PublicSuffixListTest, RulesWildcardsAndExceptions) {
  auto psl = *PublicSuffixList::FromText(kList);
  EXPECT_TRUE(psl->IsPublicSuffix("com"));
  EXPECT_TRUE(psl->IsPublicSuffix("co.uk"));
  EXPECT_FALSE(psl->IsPublicSuffix("example.co.uk"));
  EXPECT_TRUE(psl->IsPublicSuffix("anything.ck"));
  EXPECT_FALSE(psl->IsPublicSuffix("www.ck"));
  EXPECT_TRUE(psl->IsPublicSuffix("org"));  // every TLD, by the implicit "*"
  EXPECT_FALSE(psl->IsPublicSuffix("example.org"));
}

TEST(PublicSuffixListTest, PrivateSectionOnlyWhenAsked) {
  EXPECT_FALSE((*PublicSuffixList::FromText(kList))->IsPublicSuffix("github.io"));
  EXPECT_TRUE((*PublicSuffixList::FromText(kList, PublicSuffixList::Sections::kAll))
                  ->IsPublicSuffix("github.io"));
}

TEST(PublicSuffixListTest, Errors) {
  EXPECT_EQ(PublicSuffixList::FromText("// nothing\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status missing = PublicSuffixList::FromFile("no-such-list.dat").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("no-such-list.dat"));
}

}  // namespace
}  // namespace keyverifier::tls
