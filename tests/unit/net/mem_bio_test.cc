// releaseEmptyMemBio against BoringSSL's memory BIO: a drained BIO gives
// its buffer back and works on; one holding bytes keeps them. Were
// BoringSSL to keep a read offset inside the buffer, the bytes read back
// here would differ.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/buf.h>

#include <string>

#include "net/tls.h"

namespace tlsedge::net {
namespace {

std::string readAll(BIO* bio) {
  std::string out;
  char buf[1000];
  int n = 0;
  while ((n = BIO_read(bio, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(MemBio, ADrainedBioGivesItsBufferBackAndWorksOn) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  BIO_set_mem_eof_return(bio.get(), -1);
  const std::string first(5000, 'a');
  ASSERT_EQ(BIO_write(bio.get(), first.data(), static_cast<int>(first.size())), 5000);
  char part[1200];
  ASSERT_EQ(BIO_read(bio.get(), part, sizeof part), 1200);  // a partial read first
  EXPECT_FALSE(releaseEmptyMemBio(bio.get()));              // 3,800 bytes still in it
  EXPECT_EQ(readAll(bio.get()), first.substr(1200));
  EXPECT_TRUE(releaseEmptyMemBio(bio.get()));
  BUF_MEM* mem = nullptr;
  ASSERT_EQ(BIO_get_mem_ptr(bio.get(), &mem), 1);
  EXPECT_EQ(mem->max, 0u);
  const std::string second = "second write, after the release";
  ASSERT_EQ(BIO_write(bio.get(), second.data(), static_cast<int>(second.size())),
            static_cast<int>(second.size()));
  EXPECT_EQ(readAll(bio.get()), second);
}

}  // namespace
}  // namespace tlsedge::net
