// Hosts for the cluster tests on one machine: a network namespace per host,
// each joined by a veth pair to a bridge in the test's own namespace (where
// etcd listens, on the bridge's address). Faults are made as they happen
// between hosts: nftables in a host's namespace drops another's packets both
// ways (a partition: silent, as a cut cable is), and a token bucket on its
// link shapes what it sends (a slow link; Debian's kernel here has no netem).
// Needs root, and Debian's iproute2 and nftables (tools/check installs them).
// Names and the subnet come from the test's process id, so that two tests
// running at once (ctest -j2) do not meet.
#pragma once

#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "run_command.h"

namespace ringbus::test {

class TestNetwork {
 public:
  // The hosts' namespaces and links; nullptr and why if they cannot be made.
  static std::unique_ptr<TestNetwork> make(const std::vector<std::string>& hosts, std::string* why) {
    if (::geteuid() != 0) {
      *why = "network namespaces need root";
      return nullptr;
    }
    auto net = std::unique_ptr<TestNetwork>(new TestNetwork());
    const unsigned id = static_cast<unsigned>(::getpid());
    net->tag_ = std::to_string(id);
    net->subnet_ = "10." + std::to_string((id >> 8) & 0xff) + "." + std::to_string(id & 0xff) + ".";
    net->bridge_ = "rbb" + net->tag_;
    if (!net->run("ip link add " + net->bridge_ + " type bridge", why) ||
        !net->run("ip addr add " + net->gateway() + "/24 dev " + net->bridge_, why) ||
        !net->run("ip link set " + net->bridge_ + " up", why))
      return nullptr;
    int last = 1;
    for (const std::string& h : hosts) {
      const std::string ns = "rbn" + net->tag_ + h, veth = "rbv" + net->tag_ + h, peer = "rbp" + net->tag_ + h;
      net->hosts_[h] = Host{ns, veth, peer, net->subnet_ + std::to_string(++last)};
      if (!net->run("ip netns add " + ns, why) || !net->run("ip link add " + veth + " type veth peer name " + peer, why) ||
          !net->run("ip link set " + peer + " master " + net->bridge_ + " up", why) ||
          !net->run("ip link set " + veth + " netns " + ns, why) ||
          !net->run("ip -n " + ns + " addr add " + net->hosts_[h].address + "/24 dev " + veth, why) ||
          !net->run("ip -n " + ns + " link set " + veth + " up", why) || !net->run("ip -n " + ns + " link set lo up", why))
        return nullptr;
    }
    return net;
  }
  ~TestNetwork() {
    std::string ignored;
    for (const auto& [name, h] : hosts_) run("ip netns del " + h.ns, &ignored);  // takes its veth pair along
    run("ip link del " + bridge_, &ignored);
  }

  // The bridge's address in the test's own namespace: etcd listens there.
  std::string gateway() const { return subnet_ + "1"; }
  std::string address(const std::string& host) const { return hosts_.at(host).address; }
  std::string netns(const std::string& host) const { return hosts_.at(host).ns; }

  // Drops every packet between `host` and `address` (another host's, or the
  // gateway's: etcd), both ways, in `host`'s namespace.
  bool cut(const std::string& host, const std::string& address, std::string* why) {
    const std::string nft = "ip netns exec " + netns(host) + " nft ";
    return run(nft + "add table inet rbfault", why) &&
           run(nft + "'add chain inet rbfault in { type filter hook input priority 0; }'", why) &&
           run(nft + "'add chain inet rbfault out { type filter hook output priority 0; }'", why) &&
           run(nft + "add rule inet rbfault in ip saddr " + address + " drop", why) &&
           run(nft + "add rule inet rbfault out ip daddr " + address + " drop", why);
  }
  // Shapes `host`'s link to `rate` each way (tc's units: "256kbit").
  bool slow(const std::string& host, const std::string& rate, std::string* why) {
    const std::string tbf = " root tbf rate " + rate + " burst 16kb latency 2s";
    const Host& h = hosts_.at(host);
    return run("ip netns exec " + h.ns + " tc qdisc add dev " + h.veth + tbf, why) &&
           run("tc qdisc add dev " + h.peer + tbf, why);
  }
  // Takes `host`'s cuts and shaping away.
  bool heal(const std::string& host, std::string* why) {
    const std::string in = "ip netns exec " + netns(host) + " ";
    std::string ignored;
    run(in + "tc qdisc del dev " + hosts_.at(host).veth + " root", &ignored);  // none is fine
    run("tc qdisc del dev " + hosts_.at(host).peer + " root", &ignored);
    return run(in + "nft flush ruleset", why);
  }

 private:
  struct Host {
    std::string ns;
    std::string veth;  // its end of the link, in its namespace
    std::string peer;  // the bridge's end
    std::string address;
  };
  TestNetwork() = default;

  // Runs a shell command; false with the command and its output if it fails.
  static bool run(const std::string& command, std::string* why) {
    int status = 0;
    const std::string out = run_command(command + " 2>&1", &status);
    if (status != 0) *why = "'" + command + "' failed: " + out;
    return status == 0;
  }

  std::string tag_;
  std::string subnet_;
  std::string bridge_;
  std::map<std::string, Host> hosts_;
};

}  // namespace ringbus::test
