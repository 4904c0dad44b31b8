#include "certstore/store.h"

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>

#include "base/time.h"
#include "certstore/csr.h"
#include "certstore/files.h"
#include "certstore/json.h"
#include "certstore/pem.h"
#include "certstore/private_key.h"
#include "certstore/x509_text.h"
#include "conf/values.h"

namespace tlsedge::certstore {
namespace {

Status checkStoreName(const std::string& name) {
  if (Status valid = conf::checkName(name); !valid.ok()) {
    return makeError("certificate name `" + name + "`: " + valid.error().message,
                     ErrorKind::kInvalid);
  }
  // "." and ".." would escape certs/; a leading dot marks temporaries.
  if (name[0] == '.') {
    return makeError("certificate name `" + name + "`: must not start with '.'",
                     ErrorKind::kInvalid);
  }
  return Ok{};
}

std::string derToPem(const char* label, const uint8_t* der, size_t len) {
  size_t size = 0;
  EVP_EncodedLength(&size, len);
  std::string b64(size, '\0');
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(b64.data()), der, len);
  b64.resize(n);
  std::string out = std::string("-----BEGIN ") + label + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += std::string("-----END ") + label + "-----\n";
  return out;
}

// PKCS#8, unencrypted: one canonical form whatever the upload used.
Result<std::string> keyToPem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    ERR_clear_error();
    return makeError("cannot encode the private key");
  }
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string commonName(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<size_t>(ASN1_STRING_length(data)));
}

}  // namespace

const char* certSourceName(CertSource source) {
  switch (source) {
    case CertSource::kUpload:
      return "upload";
    case CertSource::kAcme:
      return "acme";
    case CertSource::kInternal:
      return "internal";
  }
  return "upload";
}

std::string metaToJson(const CertMeta& meta) {
  nlohmann::ordered_json j = {{"source", certSourceName(meta.source)},
                              {"created", utc::format(meta.created)},
                              {"updated", utc::format(meta.updated)}};
  if (!meta.site.empty()) j["site"] = meta.site;
  return jsonText(j) + "\n";
}

Result<CertMeta> metaFromJson(const std::string& json, const std::string& source) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  auto bad = [&] { return makeError(source + ": not the meta.json tlsedge writes"); };
  if (!j.is_object()) return bad();  // also what a parse error gives (discarded)
  CertMeta meta;
  for (const auto& [key, item] : j.items()) {
    if (key != "source" && key != "site" && key != "created" && key != "updated") continue;
    if (!item.is_string()) return bad();
    const std::string& value = item.get_ref<const std::string&>();
    if (key == "source") {
      if (value == "upload") {
        meta.source = CertSource::kUpload;
      } else if (value == "acme") {
        meta.source = CertSource::kAcme;
      } else if (value == "internal") {
        meta.source = CertSource::kInternal;
      } else {
        return makeError(source + ": unknown source `" + value + "`");
      }
    } else if (key == "site") {
      meta.site = value;
    } else {
      const std::optional<time_t> parsed = utc::parse(value);
      if (!parsed) return makeError(source + ": " + key + ": not a time like 2026-01-31T12:00:00Z");
      (key == "created" ? meta.created : meta.updated) = *parsed;
    }
  }
  return meta;
}

Result<std::vector<std::string>> CertificateStore::groupsWith(const char* dir,
                                                              const char* item) const {
  auto listed = storage_->list(dir);
  if (!listed.ok()) return listed.error();
  std::vector<std::string> out;
  for (std::string& name : *listed) {
    auto there = storage_->exists(std::string(dir) + "/" + name + "/" + item);
    if (!there) return there.error();
    if (*there) out.push_back(std::move(name));
  }
  return out;
}

Result<std::vector<std::string>> CertificateStore::names() const {
  return groupsWith(kCerts, kChain);
}

Result<bool> CertificateStore::contains(const std::string& name) const {
  if (!checkStoreName(name).ok()) return false;
  return storage_->exists(key(name, kChain));
}

Result<std::string> CertificateStore::chainPem(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  return storage_->load(key(name, kChain));
}

Result<CredentialsPtr> CertificateStore::load(const std::string& name, CRYPTO_BUFFER_POOL* pool,
                                              time_t now, Verify verify) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  return parseLoadedCredentials(name, storage_->load(key(name, kChain)),
                                storage_->load(key(name, kKey)), pool, now, chainPath(name),
                                keyPath(name), verify);
}

Result<CertInfo> CertificateStore::inspect(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto there = storage_->exists(key(name));
  if (!there) return there.error();
  if (!*there) {
    return makeError("no certificate named `" + name + "` in " + directory(), ErrorKind::kNotFound);
  }
  auto chain = storage_->load(key(name, kChain));
  if (!chain.ok()) return chain.error();
  auto blocks = parsePem(*chain, chainPath(name), "");
  if (!blocks.ok()) return blocks.error();
  CertInfo info;
  info.name = name;
  bssl::UniquePtr<X509> leaf;
  for (const PemBlock& block : *blocks) {
    if (block.label != "CERTIFICATE") continue;
    if (++info.chainLength == 1) {
      const uint8_t* p = block.der.data();
      leaf.reset(d2i_X509(nullptr, &p, static_cast<long>(block.der.size())));
      if (!leaf) {
        ERR_clear_error();
        return makeError(chainPath(name) + ": the first certificate is not valid X.509");
      }
      info.sha256Fingerprint = sha256Fingerprint(block.der.data(), block.der.size());
    }
  }
  if (!leaf) return makeError(chainPath(name) + ": no certificate found");
  info.subject = nameText(X509_get_subject_name(leaf.get()));
  info.issuer = nameText(X509_get_issuer_name(leaf.get()));
  info.issuerCn = commonName(X509_get_issuer_name(leaf.get()));
  subjectAltNames(leaf.get(), &info.dnsNames, &info.ipAddresses);
  info.serialHex = serialHex(X509_get0_serialNumber(leaf.get()));
  asn1ToPosix(X509_get0_notBefore(leaf.get()), &info.notBefore);
  asn1ToPosix(X509_get0_notAfter(leaf.get()), &info.notAfter);

  // Only the type and size; the key text never leaves this function.
  info.keyType = "unreadable";
  if (auto keyPem = storage_->load(key(name, kKey)); keyPem.ok()) {
    if (auto keyBlocks = parsePem(*keyPem, keyPath(name), ""); keyBlocks.ok()) {
      if (auto key = parsePrivateKey(*keyBlocks, keyPath(name)); key.ok()) {
        switch (key->type) {
          case KeyType::kEcdsaP256:
            info.keyType = "ECDSA P-256";
            break;
          case KeyType::kEcdsaP384:
            info.keyType = "ECDSA P-384";
            break;
          case KeyType::kRsa:
            info.keyType = "RSA " + std::to_string(EVP_PKEY_bits(key->key.get()));
            break;
        }
      }
    }
  }
  if (auto metaJson = storage_->load(key(name, kMeta)); metaJson.ok()) {
    if (auto meta = metaFromJson(*metaJson, storage_->describe(key(name, kMeta))); meta.ok()) {
      info.meta = *meta;
    }
  }
  ERR_clear_error();
  return info;
}

Result<AddResult> CertificateStore::add(const std::string& name, const std::string& chainPem,
                                        const std::string& keyPem, bool replace, CertSource source,
                                        time_t now, const std::string& chainSource,
                                        const std::string& keySource,
                                        const std::string& site) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  if (Status free = checkNotPending(name); !free.ok()) return free.error();
  return addEntry(name, chainPem, keyPem, replace, source, now, chainSource, keySource, site);
}

Result<AddResult> CertificateStore::addEntry(const std::string& name, const std::string& chainPem,
                                             const std::string& keyPem, bool replace,
                                             CertSource source, time_t now,
                                             const std::string& chainSource,
                                             const std::string& keySource,
                                             const std::string& site) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto there = storage_->exists(key(name));
  if (!there) return there.error();
  const bool exists = *there;
  if (exists && !replace) {
    return makeError("a certificate named `" + name + "` already exists in " + directory() +
                         " (use --replace to replace it)",
                     ErrorKind::kConflict);
  }
  // Validate everything before touching the disk: a refusal changes nothing.
  // In the shared pool: what is validated here is what handshakes are served
  // (the admin API applies it without reading the files back).
  auto parsed =
      parseCredentials(name, chainPem, keyPem, sharedBufferPool(), now, chainSource, keySource);
  if (!parsed.ok()) return makeError(parsed.error().message, ErrorKind::kInvalid);
  const Credentials& credentials = **parsed;

  std::string chainOut;
  for (const auto& der : credentials.chain) {
    chainOut +=
        derToPem("CERTIFICATE", CRYPTO_BUFFER_data(der.get()), CRYPTO_BUFFER_len(der.get()));
  }
  auto keyOut = keyToPem(credentials.key.get());
  if (!keyOut.ok()) return keyOut.error();

  CertMeta meta;
  meta.source = source;
  meta.created = now;
  meta.updated = now;
  meta.site = site;
  if (exists) {
    if (auto old = storage_->load(key(name, kMeta)); old.ok()) {
      if (auto oldMeta = metaFromJson(*old, storage_->describe(key(name, kMeta))); oldMeta.ok()) {
        meta.created = oldMeta->created;
      }
    }
  }

  using Item = Storage::Item;
  const std::vector<Item> items = {{kKey, std::move(*keyOut), Storage::Secrecy::kSecret},
                                   {kChain, std::move(chainOut), Storage::Secrecy::kPublic},
                                   {kMeta, metaToJson(meta), Storage::Secrecy::kPublic}};
  auto written = storage_->storeGroup(key(name), items, replace);
  if (!written.ok()) {
    if (!replace && written.error().kind == ErrorKind::kConflict) {  // added meanwhile
      return makeError("a certificate named `" + name + "` already exists in " + directory() +
                           " (use --replace to replace it)",
                       ErrorKind::kConflict);
    }
    return written.error();
  }

  AddResult result;
  result.notes = credentials.notes;
  result.credentials = std::move(*parsed);
  result.replaced = *written;
  return result;
}

Status CertificateStore::remove(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto there = storage_->exists(key(name));
  if (!there) return there.error();
  if (!*there) {
    return makeError("no certificate named `" + name + "` in " + directory(), ErrorKind::kNotFound);
  }
  return storage_->remove(key(name));
}

Status CertificateStore::checkNotPending(const std::string& name) const {
  auto pending = storage_->exists(requestKey(name));
  if (!pending) return pending.error();
  if (*pending) {
    return makeError("a certificate request named `" + name + "` is pending in " +
                         requestsDirectory() + " (complete it with `cert add " + name +
                         " --cert SIGNED.pem`, or remove it with `cert rm " + name + "`)",
                     ErrorKind::kConflict);
  }
  return Ok{};
}

Result<PendingRequest> CertificateStore::request(const std::string& name,
                                                 const std::vector<std::string>& hosts,
                                                 NewKeyType keyType, time_t now,
                                                 const std::string& subject) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  if (hosts.empty()) {
    return makeError("certificate request `" + name + "`: no hosts (give --hosts a,b)",
                     ErrorKind::kInvalid);
  }
  auto there = storage_->exists(key(name));
  if (!there) return there.error();
  if (*there) {
    return makeError("a certificate named `" + name + "` already exists in " + directory() +
                         "; choose another name",
                     ErrorKind::kConflict);
  }
  if (Status free = checkNotPending(name); !free.ok()) return free.error();
  auto csr = makeCsr(hosts, keyType, subject);
  if (!csr.ok()) {
    return makeError("certificate request `" + name + "`: " + csr.error().message,
                     csr.error().kind);
  }
  PendingRequest out;
  out.name = name;
  out.hosts = hosts;
  out.keyType = newKeyTypeName(keyType);
  out.subject = subject;
  out.requested = now;
  out.csrPem = derToPem("CERTIFICATE REQUEST", reinterpret_cast<const uint8_t*>(csr->der.data()),
                        csr->der.size());
  nlohmann::ordered_json meta = {
      {"hosts", hosts}, {"key_type", out.keyType}, {"requested", utc::format(now)}};
  if (!subject.empty()) meta["subject"] = subject;
  using Item = Storage::Item;
  const std::vector<Item> items = {{kKey, std::move(csr->keyPem), Storage::Secrecy::kSecret},
                                   {kCsr, out.csrPem, Storage::Secrecy::kPublic},
                                   {kMeta, jsonText(meta) + "\n", Storage::Secrecy::kPublic}};
  auto written = storage_->storeGroup(requestKey(name), items, /*replace=*/false);
  if (!written.ok()) {
    if (written.error().kind == ErrorKind::kConflict) {  // requested meanwhile
      if (Status free = checkNotPending(name); !free.ok()) return free.error();
    }
    return written.error();
  }
  return out;
}

Result<std::vector<std::string>> CertificateStore::pendingNames() const {
  return groupsWith(kRequests, kKey);
}

Result<bool> CertificateStore::pendingContains(const std::string& name) const {
  if (!checkStoreName(name).ok()) return false;
  return storage_->exists(requestKey(name));
}

Result<PendingRequest> CertificateStore::pending(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto csr = storage_->load(requestKey(name, kCsr));
  if (!csr.ok()) {
    if (csr.error().kind != ErrorKind::kNotFound) return csr.error();
    return makeError(
        "no certificate request named `" + name + "` is pending in " + requestsDirectory(),
        ErrorKind::kNotFound);
  }
  PendingRequest out;
  out.name = name;
  out.csrPem = std::move(*csr);
  const std::string metaSource = storage_->describe(requestKey(name, kMeta));
  auto metaText = storage_->load(requestKey(name, kMeta));
  if (!metaText.ok()) return metaText.error();
  const nlohmann::json meta = nlohmann::json::parse(*metaText, nullptr, false);
  auto bad = [&] { return makeError(metaSource + ": not the meta.json tlsedge writes"); };
  if (!meta.is_object()) return bad();
  const auto hosts = meta.find("hosts");
  const auto keyType = meta.find("key_type");
  const auto requested = meta.find("requested");
  if (hosts == meta.end() || !hosts->is_array() || keyType == meta.end() || !keyType->is_string() ||
      requested == meta.end() || !requested->is_string()) {
    return bad();
  }
  for (const auto& host : *hosts) {
    if (!host.is_string()) return bad();
    out.hosts.push_back(host.get<std::string>());
  }
  out.keyType = keyType->get<std::string>();
  if (const auto subject = meta.find("subject"); subject != meta.end()) {
    if (!subject->is_string()) return bad();
    out.subject = subject->get<std::string>();
  }
  const std::optional<time_t> when = utc::parse(requested->get<std::string>());
  if (!when) return bad();
  out.requested = *when;
  return out;
}

Result<AddResult> CertificateStore::complete(const std::string& name, const std::string& chainPem,
                                             time_t now, const std::string& chainSource) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto keyPem = storage_->load(requestKey(name, kKey));
  if (!keyPem.ok()) {
    if (keyPem.error().kind != ErrorKind::kNotFound) return keyPem.error();
    return makeError("no certificate request named `" + name + "` is pending in " +
                         requestsDirectory() + "; give the certificate's key with --key",
                     ErrorKind::kNotFound);
  }
  const std::string keySource = "the key of the pending request `" + name + "` (" +
                                storage_->describe(requestKey(name, kKey)) + ")";
  auto added = addEntry(name, chainPem, *keyPem, /*replace=*/false, CertSource::kUpload, now,
                        chainSource, keySource, /*site=*/{});
  if (!added.ok()) return added.error();
  // Stored: the request is done. Should its removal fail, the certificate
  // still serves; the leftover request is named so it can be removed.
  if (Status removed = storage_->remove(requestKey(name)); !removed.ok()) {
    added->notes.push_back("the pending request could not be removed (" + removed.error().message +
                           "); remove it with `cert rm " + name + "`");
  }
  return added;
}

Status CertificateStore::removePending(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  auto there = storage_->exists(requestKey(name));
  if (!there) return there.error();
  if (!*there) {
    return makeError(
        "no certificate request named `" + name + "` is pending in " + requestsDirectory(),
        ErrorKind::kNotFound);
  }
  return storage_->remove(requestKey(name));
}

}  // namespace tlsedge::certstore
