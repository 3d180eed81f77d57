# Shared set-up of tools/demo and tools/check (sourced, not run): makes sure
# the Debian packages the build needs are installed, then configures and
# builds a CMake preset. Everything comes from Debian's archive.

# The packages, by what needs them.
RINGBUS_PACKAGES=(
  cmake g++ make pkg-config          # the build
  libboost-dev                       # Boost.Lockfree/Interprocess (bench baselines)
  libxxhash-dev                      # the stable key hash
  liburing-dev                       # the commit log's io_uring writer
  libisal-dev                        # CRC-32C (ISA-L)
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev  # Kafka's record batch codecs
  libcli11-dev libfmt-dev            # command-line parsing and formatting of the tools
  nlohmann-json3-dev                 # the control channel's JSON, JSON output
  libtomlplusplus-dev libspdlog-dev  # ringbusd's configuration file and log
  libcurl4-openssl-dev libssl-dev    # the cluster: etcd's API over HTTP, the peers' handshake
  libgtest-dev libgmock-dev          # tests
  libbenchmark-dev                   # benchmarks
  gnuplot-nox                        # the trucking demo's chart
)
# Only tools/check needs these: python3-kafka and its codecs for the record
# batch cross-check test, a real etcd for the cluster tests, and network
# namespaces, nftables and tc for their network faults, spin for the ring
# protocol's model (bus/model/),
RINGBUS_TEST_PACKAGES=(python3-kafka python3-snappy python3-lz4 python3-zstandard etcd-server iproute2 nftables spin)
# and (not with --quick) clang and libFuzzer for the fuzz targets.
RINGBUS_CHECK_PACKAGES=(clang-14 libclang-rt-14-dev)

ringbus_need_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || {
      echo "error: apt-get could not install: ${missing[*]}" >&2
      return 1
    }
  else
    echo "Some Debian packages are missing. Run this once, then try again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

# ringbus_build PRESET [targets...]: configure (once) and build with the
# preset's settings, two jobs (the reference machine has two cores).
ringbus_build() {
  local preset=$1
  shift
  echo "==> building ($preset)"
  cmake --preset "$preset" >/dev/null || return 1
  if [ $# -gt 0 ]; then
    cmake --build --preset "$preset" --target "$@" || return 1
  else
    cmake --build --preset "$preset" || return 1
  fi
}
