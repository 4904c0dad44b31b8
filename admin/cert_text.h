// The text and JSON forms of `tlsedge cert` results, shared by the CLI
// working on the state directory and the admin API (which renders them for
// the CLI, so that the output is the same either way).
//
// Thread: any (pure functions).
#pragma once

#include <string>
#include <vector>

#include "certstore/manage.h"

namespace tlsedge::admin {

// Each ends with a newline. `certsDir` names the store in the empty listing.
std::string listText(const std::vector<certstore::CertListEntry>& entries,
                     const std::string& certsDir);
std::string showText(const certstore::CertListEntry& entry);
// `cert request`: the CSR (PEM), nothing else, so that stdout can go to the CA.
std::string requestText(const certstore::PendingRequest& request);
std::string whichText(const certstore::WhichOutcome& outcome);
std::string addText(const certstore::AddOutcome& outcome);
std::string removedText(const std::string& name);
// `{"removed":"NAME"}`
std::string removedJson(const std::string& name);

}  // namespace tlsedge::admin
