// SitesApi: sites managed at runtime, the admin API's /v1/sites resources
// (AdminApi hands every path under /v1/sites here).
//
//   GET    /v1/sites          every site, each with "source": "config" (the
//                             YAML, read-only here) or "api"
//   GET    /v1/sites/NAME     one site
//   PUT    /v1/sites/NAME     create (201) or replace (200) an API site; the
//                             body is the site as JSON with the keys of a YAML
//                             `sites:` entry (`name` may be left out)
//   DELETE /v1/sites/NAME     remove an API site
//
// A body is read by the YAML site parser (conf/api_sites.h: a JSON object is
// YAML), so its rules and messages are the YAML's, positions those of the
// body ("request body:1:25: hosts[0]: ..."): 422 with every problem. A PUT or
// DELETE naming a YAML site is refused (409), as is a host another site
// serves (422, the YAML's duplicate-host message). A change is then built
// as the daemon would serve it (`prepare`: every load-time check, such as a
// certificate name that exists; 422 when one fails) and written to the
// storage as the group sites/NAME holding site.json (the body as given):
// <state_dir>/sites/NAME/site.json, or the fleet's etcd in fleet mode;
// the check, the build and the write on the thread pool. Then it is served to new
// connections (`commit`, on the loop), without a reload; a commit that
// fails undoes the write; one refused with kConflict (a reload or a
// certificate swap came in between) is built again, at most three times
// (then 503). Changes run one at a time, in the order asked. A write that
// is served keeps serving after a restart and a SIGHUP (withStoredSites).
//
// In fleet mode the writes go to etcd, and every node's replica copies
// them into its state directory (fleet/replica.h) and calls
// storedChanged(): the node then serves the sites its state directory
// holds, checked against its own YAML, as a change queued behind the
// others: each stored site that does not fit the node's YAML (a host or
// name it has, an upstream it lacks, a certificate it does not hold yet)
// is left out and logged, the others are served; those left out are tried
// again at each site and certificate change.
//
// With `Accept: text/plain`: the list as one line per site, NAME SOURCE
// HOSTS; one site as its JSON without `source` (what a PUT takes back).
//
// Thread: control loop; the check, the build and the storage writes on a
// pool thread (`offload`).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "admin/admin_api.h"
#include "base/result.h"
#include "certstore/storage.h"
#include "conf/api_sites.h"
#include "conf/config.h"

namespace tlsedge::admin {

class SitesApi {
 public:
  // What the daemon built for a configuration, not yet served (opaque here).
  using Prepared = std::shared_ptr<const void>;

  struct Hooks {
    std::function<conf::ConfigPtr()> config;  // the running configuration
    // Called on the control loop: what builds, on a pool thread
    // (`offload`) over immutable inputs, everything that would serve a
    // configuration (its router, certificate snapshot) from what runs now,
    // changing nothing; its error (kInvalid) says what fails.
    std::function<std::function<Result<Prepared>(conf::ConfigPtr next)>()> prepare;
    // Serves what `prepare` built to new connections; `done` once every
    // worker does (or with the error that refused it: nothing changed;
    // kConflict: what it was built from changed meanwhile, build again).
    std::function<void(Prepared, std::function<void(Status)> done)> commit;
    std::function<void(AdminApi::Work, AdminApi::Reply)> offload =
        [](AdminApi::Work work, AdminApi::Reply done) { done(work()); };
    // Where sites are kept. Empty: the running configuration's state
    // directory.
    std::function<certstore::StoragePtr()> storage;
  };

  explicit SitesApi(Hooks hooks) : hooks_(std::move(hooks)) {}

  // Whether `path` (without the query) is one of ours.
  static bool owns(std::string_view path);
  void handle(const AdminRequest& request, AdminApi::Reply reply);
  // The state directory's sites changed under us (the fleet's replica
  // wrote them): they are read again and served when they differ from
  // the running ones. Calls while one waits to start are one.
  void storedChanged();
  // The certificate store changed: stored sites left out last time (a
  // certificate they name may have arrived since), or being read now, are
  // read again.
  void certificatesChanged() {
    if (storedRefused_ > 0 || resyncRunning_) storedChanged();
  }
  // How many of the state directory's sites were left out the last time
  // they were read (conf::fittingApiSites: they do not fit this node's
  // YAML, or name a certificate it lacks); the others are served.
  size_t storedRefused() const { return storedRefused_; }
  // What a start or reload read (daemon's loadGeneration, fleet mode).
  void setStoredRefused(size_t refused) { storedRefused_ = refused; }

 private:
  struct Change {
    AdminRequest request;
    std::string name;
    AdminApi::Reply reply;
    int attempts = 0;     // commits refused with kConflict
    bool resync = false;  // storedChanged(): no request, nothing written
  };
  void next();
  void change(Change change);
  // Checks, builds, keeps and commits `change` against the configuration
  // running now; again from the start if a reload came in between.
  void attempt(const std::shared_ptr<Change>& change);
  // storedChanged()'s change: the stored sites read, checked and built on
  // the pool, then committed.
  void resync(const std::shared_ptr<Change>& change);
  // Commits what `prepared` holds for `change`: `served` with the outcome,
  // after a kConflict (a certificate swap meanwhile) `again` (at most
  // three times).
  void commitPrepared(const std::shared_ptr<Change>& change, const Prepared& prepared,
                      std::function<void()> again, std::function<void(Status)> served);
  // The change's answer is `r`; the next change starts.
  void finish(Change& change, AdminResponse r);
  certstore::StoragePtr storage(const conf::Config& config) const;
  // Undoes a kept change (on the pool): `key` gets `before` back (nothing:
  // removed), then `then` on the loop.
  void restore(const certstore::StoragePtr& store, const std::string& key,
               const std::shared_ptr<std::optional<std::string>>& before,
               std::function<void()> then);

  Hooks hooks_;
  std::deque<Change> queue_;  // PUT and DELETE, one at a time
  bool busy_ = false;
  bool resyncQueued_ = false;   // a storedChanged() change waits in queue_
  bool resyncRunning_ = false;  // one is being read, built or committed
  size_t storedRefused_ = 0;    // see storedRefused()
  std::string storedProblems_;  // why, as last logged
};

// The API sites' texts `store` keeps (sites/NAME/site.json), by name.
Result<std::vector<conf::SiteText>> storedSiteTexts(const certstore::Storage& store);

// The sites kept in `yaml`'s state directory that fit it
// (conf::fittingApiSites, against the store's certificate names there):
// what a fleet node serves, whose stored sites other nodes wrote.
Result<conf::FittingSites> fittingStoredSites(const conf::Config& yaml);

// The sites of `config` with those kept in its state directory
// (storedSiteTexts) after the YAML ones, every one checked as a PUT
// checks it; an error lists every problem (a stored site that a changed
// YAML no longer allows refuses the start or reload, naming its file).
Result<conf::ConfigPtr> withStoredSites(const conf::ConfigPtr& config);

// A site as JSON, with the keys of YAML (and "source" when `withSource`).
std::string siteJson(const conf::Site& site, bool withSource, int indent = -1);

}  // namespace tlsedge::admin
