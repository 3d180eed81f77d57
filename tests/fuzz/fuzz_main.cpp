// A main() for the fuzz targets when they are built without libFuzzer (g++):
// runs each file named on the command line, then a fixed number of inputs
// from a seeded generator (random bytes, and mutations of valid seeds the
// target provides), so every fuzz target also runs as a quick CTest test.
// With clang, the `fuzz` preset links libFuzzer's own main instead.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Valid inputs to mutate; each target defines it.
std::vector<std::string> fuzz_seeds();

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  const std::vector<std::string> seeds = fuzz_seeds();
  std::mt19937_64 rng(20261125);
  constexpr int kIterations = 20000;
  for (int i = 0; i < kIterations; ++i) {
    std::string input;
    if (!seeds.empty() && i % 2 == 0) {
      input = seeds[rng() % seeds.size()];
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips && !input.empty(); ++f) {
        switch (rng() % 3) {
          case 0: input[rng() % input.size()] ^= static_cast<char>(1u << (rng() % 8)); break;
          case 1: input.resize(rng() % (input.size() + 1)); break;
          default: input[rng() % input.size()] = static_cast<char>(rng()); break;
        }
      }
    } else {
      input.resize(rng() % 512);
      for (char& c : input) c = static_cast<char>(rng());
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::printf("%d inputs run without a crash\n", kIterations + argc - 1);
  return 0;
}
