// How peers prove they belong to the cluster: each side sends a fresh
// random nonce and proves it knows the cluster secret with an HMAC-SHA256
// over both nonces, the cluster's name and its own node name, under a label
// of its role (so a leader's proof can never stand for a mirror's). The
// secret never crosses the wire. Spec: cluster/README.md, "Handshake".
#pragma once

#include <string_view>

#include "replication_protocol.h"

namespace ringbus::cluster {

enum class PeerRole : std::uint8_t { leader, mirror };

// A nonce from the system's random source (OpenSSL's RAND_bytes).
wire::Nonce random_nonce();

// The proof `role` sends: HMAC-SHA256(secret, label(role) | theirs | ours |
// cluster | node), where `theirs` is the nonce the other side sent and
// `ours` the one this side sent.
wire::Proof make_proof(std::string_view secret, PeerRole role, const wire::Nonce& theirs, const wire::Nonce& ours,
                       std::string_view cluster, std::string_view node);

// Compares in constant time.
bool proof_matches(const wire::Proof& a, const wire::Proof& b) noexcept;

}  // namespace ringbus::cluster
