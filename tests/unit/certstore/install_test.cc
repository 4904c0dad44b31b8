// installCredentials: a real in-memory handshake serves the installed chain.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "certstore/credentials.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Pki;

TEST(InstallCredentials, HandshakeServesTheChain) {
  Pki pki = Pki::make();
  auto creds =
      parseCredentials("t",
                       testing::certPem(pki.root.get()) + testing::certPem(pki.leaf.get()) +
                           testing::certPem(pki.inter.get()),
                       testing::pkcs8Pem(pki.leafKey.get()), sharedBufferPool(), testing::kNow);
  ASSERT_TRUE(creds.ok()) << creds.error().message;

  bssl::UniquePtr<SSL_CTX> serverCtx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL_CTX> clientCtx(SSL_CTX_new(TLS_method()));
  ASSERT_TRUE(serverCtx && clientCtx);
  bssl::UniquePtr<SSL> server(SSL_new(serverCtx.get()));
  bssl::UniquePtr<SSL> client(SSL_new(clientCtx.get()));
  ASSERT_TRUE(server && client);
  ASSERT_TRUE(installCredentials(server.get(), **creds));
  SSL_set_accept_state(server.get());
  SSL_set_connect_state(client.get());
  SSL_set_tlsext_host_name(client.get(), "leaf.example.com");

  BIO* serverBio = nullptr;
  BIO* clientBio = nullptr;
  ASSERT_TRUE(BIO_new_bio_pair(&serverBio, 0, &clientBio, 0));
  SSL_set_bio(server.get(), serverBio, serverBio);
  SSL_set_bio(client.get(), clientBio, clientBio);

  bool serverDone = false;
  bool clientDone = false;
  for (int i = 0; i < 20 && !(serverDone && clientDone); ++i) {
    if (!clientDone) {
      int rc = SSL_do_handshake(client.get());
      clientDone = rc == 1;
      if (!clientDone) {
        ASSERT_EQ(SSL_get_error(client.get(), rc), SSL_ERROR_WANT_READ);
      }
    }
    if (!serverDone) {
      int rc = SSL_do_handshake(server.get());
      serverDone = rc == 1;
      if (!serverDone) {
        ASSERT_EQ(SSL_get_error(server.get(), rc), SSL_ERROR_WANT_READ);
      }
    }
  }
  ASSERT_TRUE(serverDone && clientDone);
  const STACK_OF(CRYPTO_BUFFER)* peer = SSL_get0_peer_certificates(client.get());
  ASSERT_NE(peer, nullptr);
  ASSERT_EQ(sk_CRYPTO_BUFFER_num(peer), 2u);  // leaf + intermediate, root dropped
  const CRYPTO_BUFFER* leaf = sk_CRYPTO_BUFFER_value(peer, 0);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(leaf)), CRYPTO_BUFFER_len(leaf)),
      testing::certDer(pki.leaf.get()));
}

}  // namespace
}  // namespace tlsedge::certstore
