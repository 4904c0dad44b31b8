#include "certstore/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/time.h"
#include "certstore/files.h"
#include "certstore/json.h"
#include "certstore/pem.h"
#include "certstore/private_key.h"
#include "certstore/x509_text.h"
#include "conf/values.h"

namespace tlsedge::certstore {
namespace {

bool isDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool isFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

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

std::string uniqueSuffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

void removeTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
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

Result<std::vector<std::string>> CertificateStore::names() const {
  std::vector<std::string> out;
  DIR* dir = opendir(dir_.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return out;
    return makeError("cannot list " + dir_ + ": " + std::strerror(errno));
  }
  while (const dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;  // ".", "..", temporaries
    if (isFile(chainPath(name))) out.push_back(std::move(name));
  }
  closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

bool CertificateStore::contains(const std::string& name) const {
  return checkStoreName(name).ok() && isFile(chainPath(name));
}

Result<CredentialsPtr> CertificateStore::load(const std::string& name, CRYPTO_BUFFER_POOL* pool,
                                              time_t now, Verify verify) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  return loadCredentials(name, chainPath(name), keyPath(name), pool, now, verify);
}

Result<CertInfo> CertificateStore::inspect(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  if (!isDirectory(dir_ + "/" + name)) {
    return makeError("no certificate named `" + name + "` in " + dir_, ErrorKind::kNotFound);
  }
  auto chainPem = readFile(chainPath(name));
  if (!chainPem.ok()) return chainPem.error();
  auto blocks = parsePem(*chainPem, chainPath(name), "");
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
  if (auto keyPem = readFile(keyPath(name)); keyPem.ok()) {
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
  if (auto metaJson = readFile(dir_ + "/" + name + "/meta.json"); metaJson.ok()) {
    if (auto meta = metaFromJson(*metaJson, dir_ + "/" + name + "/meta.json"); meta.ok()) {
      info.meta = *meta;
    }
  }
  ERR_clear_error();
  return info;
}

size_t CertificateStore::removeStaleTemporaries() const {
  std::vector<std::string> stale;
  DIR* dir = opendir(dir_.c_str());
  if (dir == nullptr) return 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind(".tmp-", 0) != 0 && name.rfind(".rm-", 0) != 0) continue;
    // The suffix is "-PID-N"; the certificate name in between may hold '-'.
    const size_t last = name.rfind('-');
    const size_t before =
        last == std::string::npos || last == 0 ? std::string::npos : name.rfind('-', last - 1);
    if (before == std::string::npos) continue;
    const std::string pidText = name.substr(before + 1, last - before - 1);
    if (pidText.empty() || pidText.size() > 9 ||
        pidText.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(pidText));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(dir_ + "/" + name);
  }
  closedir(dir);
  for (const std::string& path : stale) removeTree(path);
  return stale.size();
}

Result<AddResult> CertificateStore::add(const std::string& name, const std::string& chainPem,
                                        const std::string& keyPem, bool replace, CertSource source,
                                        time_t now, const std::string& chainSource,
                                        const std::string& keySource,
                                        const std::string& site) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  removeStaleTemporaries();
  const std::string target = dir_ + "/" + name;
  const bool exists = isDirectory(target);
  if (exists && !replace) {
    return makeError("a certificate named `" + name + "` already exists in " + dir_ +
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
    if (auto old = readFile(target + "/meta.json"); old.ok()) {
      if (auto oldMeta = metaFromJson(*old, target + "/meta.json"); oldMeta.ok()) {
        meta.created = oldMeta->created;
      }
    }
  }

  // Everything goes into a temporary directory next to the target, so that
  // one rename publishes all three files together.
  const std::string temp = dir_ + "/.tmp-" + name + "-" + uniqueSuffix();
  auto fail = [&](const Error& error) -> Result<AddResult> {
    removeTree(temp);
    return error;
  };
  if (Status w = writeFileAtomic(temp + "/privkey.pem", *keyOut, 0600); !w.ok())
    return fail(w.error());
  if (Status w = writeFileAtomic(temp + "/fullchain.pem", chainOut, 0644); !w.ok())
    return fail(w.error());
  if (Status w = writeFileAtomic(temp + "/meta.json", metaToJson(meta), 0644); !w.ok())
    return fail(w.error());

  if (exists) {
    // Swap both directories in one step: the old entry serves until then.
    if (renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
      return fail(makeError("cannot replace " + target + ": " + std::strerror(errno)));
    }
  } else if (rename(temp.c_str(), target.c_str()) != 0) {
    return fail(makeError("cannot create " + target + ": " + std::strerror(errno)));
  }
  if (Status synced = syncDirectory(dir_); !synced.ok()) return fail(synced.error());
  removeTree(temp);  // after an exchange: the old entry

  AddResult result;
  result.notes = credentials.notes;
  result.credentials = std::move(*parsed);
  result.replaced = exists;
  return result;
}

Status CertificateStore::remove(const std::string& name) const {
  if (Status valid = checkStoreName(name); !valid.ok()) return valid.error();
  const std::string target = dir_ + "/" + name;
  if (!isDirectory(target)) {
    return makeError("no certificate named `" + name + "` in " + dir_, ErrorKind::kNotFound);
  }
  removeStaleTemporaries();
  const std::string doomed = dir_ + "/.rm-" + name + "-" + uniqueSuffix();
  if (rename(target.c_str(), doomed.c_str()) != 0) {
    return makeError("cannot remove " + target + ": " + std::strerror(errno));
  }
  Status synced = syncDirectory(dir_);
  removeTree(doomed);
  return synced;
}

}  // namespace tlsedge::certstore
