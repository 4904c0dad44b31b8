// acme.eab, acme.preferred_chain and acme.key_type (conf/parse_acme_options.cc).
#include <gtest/gtest.h>

#include "conf/config.h"
#include "tests/unit/conf/problems.h"

namespace tlsedge::conf {
namespace {

using testing::expectProblem;

std::string withAcme(const std::string& options) {
  return "acme:\n"
         "  directory: https://ca.example/dir\n" +
         options +
         "sites:\n"
         "  - name: s\n"
         "    hosts: [a.example]\n"
         "    tls: { acme: true }\n"
         "    routes: [{ path: /, respond: {} }]\n";
}

TEST(ConfigAcmeOptions, Defaults) {
  auto config = loadString(withAcme(""), "t.yaml", "/");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE((*config)->acme->eab.has_value());
  EXPECT_EQ((*config)->acme->preferredChain, "");
  EXPECT_EQ((*config)->acme->keyType, AcmeKeyType::kEcdsaP256);
}

TEST(ConfigAcmeOptions, AllSet) {
  auto config = loadString(withAcme("  eab: { kid: kid-1, hmac_key: AAECAwQFBgcI-_8 }\n"
                                    "  preferred_chain: \"ISRG Root X1\"\n"
                                    "  key_type: rsa2048\n"),
                           "t.yaml", "/");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_TRUE((*config)->acme->eab.has_value());
  EXPECT_EQ((*config)->acme->eab->kid, "kid-1");
  EXPECT_EQ((*config)->acme->eab->hmacKey, "AAECAwQFBgcI-_8");
  EXPECT_EQ((*config)->acme->preferredChain, "ISRG Root X1");
  EXPECT_EQ((*config)->acme->keyType, AcmeKeyType::kRsa2048);
  for (auto [text, type] :
       {std::pair{"ecdsa-p384", AcmeKeyType::kEcdsaP384},
        std::pair{"rsa3072", AcmeKeyType::kRsa3072}, std::pair{"rsa4096", AcmeKeyType::kRsa4096}}) {
    auto other = loadString(withAcme(std::string("  key_type: ") + text + "\n"), "t.yaml", "/");
    ASSERT_TRUE(other.ok()) << text;
    EXPECT_EQ((*other)->acme->keyType, type) << text;
  }
}

TEST(ConfigAcmeOptions, EabNeedsBoth) {
  expectProblem(withAcme("  eab: { kid: kid-1 }\n"), "3:8",
                "acme.eab: needs both `kid` and `hmac_key`");
  expectProblem(withAcme("  eab: { hmac_key: AAECAwQF }\n"), "3:8", "`kid` is missing");
  expectProblem(withAcme("  eab: { kid: k, hmac_key: AAECAwQF, alg: HS256 }\n"), "3:38",
                "acme.eab.alg");
}

TEST(ConfigAcmeOptions, EabKeyMustDecodeAndIsNotRepeated) {
  const std::string yaml = withAcme("  eab: { kid: k, hmac_key: \"s3cr+t/key==\" }\n");
  expectProblem(yaml, "3:28", "acme.eab.hmac_key: must be the MAC key as base64url");
  auto problems = testing::problemsOf(yaml);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].find("s3cr+t"), std::string::npos) << problems[0];
  expectProblem(withAcme("  eab: { kid: k, hmac_key: AAECA }\n"), "3:28", "does not decode");
}

TEST(ConfigAcmeOptions, BadValues) {
  expectProblem(withAcme("  key_type: ed25519\n"), "3:13",
                "acme.key_type: must be ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096, "
                "got `ed25519`");
  expectProblem(withAcme("  preferred_chain: \"\"\n"), "3:20", "acme.preferred_chain");
}

}  // namespace
}  // namespace tlsedge::conf
