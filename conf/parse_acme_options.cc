// The `acme` section's account and certificate options: `eab` (External
// Account Binding), `preferred_chain` and `key_type`.
#include <string_view>
#include <utility>

#include "base/ascii.h"
#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {

// RFC 4648 section 5 text (padding optional) that decodes to at least one
// byte: acme/ decodes it; this only refuses what could not be decoded.
bool isBase64url(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() < 2 || text.size() % 4 == 1) return false;
  for (char c : text) {
    const bool ok = ascii::isAlnum(c) || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool parseEab(ParseContext& ctx, const Field& field, Acme& acme) {
  MapReader map(ctx.diag, field, {"kid", "hmac_key"});
  if (!map.isMap()) return false;
  auto kidField = map.get("kid");
  auto keyField = map.get("hmac_key");
  if (!kidField || !keyField) {
    ctx.diag.report(field.pos, field.path,
                    std::string("needs both `kid` and `hmac_key` (the key identifier and MAC key "
                                "the CA gave for the external account); `") +
                        (kidField ? "hmac_key" : "kid") + "` is missing");
    return false;
  }
  auto kid = readNonEmptyString(ctx.diag, *kidField);
  auto key = readNonEmptyString(ctx.diag, *keyField);
  if (!kid || !key) return false;
  if (!isBase64url(*key)) {
    // The value is a secret: the message never repeats it.
    ctx.diag.report(keyField->pos, keyField->path,
                    "must be the MAC key as base64url (A-Z a-z 0-9 - _, as the CA gives it); "
                    "this value does not decode");
    return false;
  }
  acme.eab = AcmeEab{*kid, *key};
  return true;
}

}  // namespace

bool parseAcmeOptions(ParseContext& ctx, const MapReader& map, Acme& acme) {
  bool ok = true;
  if (auto f = map.get("eab")) ok = parseEab(ctx, *f, acme) && ok;
  if (auto f = map.get("preferred_chain")) {
    if (auto name = readNonEmptyString(ctx.diag, *f)) {
      acme.preferredChain = *name;
    } else {
      ok = false;
    }
  }
  if (auto f = map.get("key_type")) {
    static constexpr std::pair<std::string_view, AcmeKeyType> kTypes[] = {
        {"ecdsa-p256", AcmeKeyType::kEcdsaP256},
        {"ecdsa-p384", AcmeKeyType::kEcdsaP384},
        {"rsa2048", AcmeKeyType::kRsa2048},
        {"rsa3072", AcmeKeyType::kRsa3072},
        {"rsa4096", AcmeKeyType::kRsa4096}};
    if (auto name = readNonEmptyString(ctx.diag, *f)) {
      bool known = false;
      for (const auto& [text, type] : kTypes) {
        if (*name == text) {
          acme.keyType = type;
          known = true;
        }
      }
      if (!known) {
        ctx.diag.report(
            f->pos, f->path,
            "must be ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096, got `" + *name + "`");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  return ok;
}

}  // namespace tlsedge::conf
