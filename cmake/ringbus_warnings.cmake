# Warnings are errors on the project's own targets (ARCHITECTURE.md, "Conventions").
# cmpxchg16b (-mcx16) is required for the 16-byte claim word of a partition
# ring; every x86-64 CPU since 2008 has it, and SSE4.2 (with POPCNT).
# PREFETCHW (-mprfchw; Intel since Broadwell, AMD since K8) lets a producer
# ask for cache lines it is about to write.
function(ringbus_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror -mcx16 -msse4.2 -mprfchw)
endfunction()
