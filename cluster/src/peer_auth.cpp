#include "peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstdio>
#include <vector>

namespace ringbus::cluster {

wire::Nonce random_nonce() {
  wire::Nonce n{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1) {
    // Without randomness the handshake would be replayable: no link at all.
    std::fputs("ringbus: OpenSSL's RAND_bytes failed; cannot make a handshake nonce\n", stderr);
    std::abort();
  }
  return n;
}

wire::Proof make_proof(std::string_view secret, PeerRole role, const wire::Nonce& theirs, const wire::Nonce& ours,
                       std::string_view cluster, std::string_view node) {
  const std::string_view label = role == PeerRole::leader ? "ringbus-replication-leader" : "ringbus-replication-mirror";
  std::vector<unsigned char> msg;
  auto add = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    msg.insert(msg.end(), b, b + n);
  };
  // Lengths in front of the variable fields, so that no two inputs run together.
  auto add_str = [&](std::string_view s) {
    const auto n = static_cast<std::uint16_t>(s.size());
    const unsigned char len[2] = {static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
    add(len, 2);
    add(s.data(), s.size());
  };
  add_str(label);
  add(theirs.data(), theirs.size());
  add(ours.data(), ours.size());
  add_str(cluster);
  add_str(node);
  wire::Proof out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg.data(), msg.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

bool proof_matches(const wire::Proof& a, const wire::Proof& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ringbus::cluster
