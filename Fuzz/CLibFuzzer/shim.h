// libFuzzer's entry point for programs that own main() (LLVM >= 11). SwiftPM
// links Linux executables with main aliased to <module>_main, so the fuzz
// target defines that and hands control to libFuzzer through this call.
// Only declared here; -sanitize=fuzzer links the definition.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
