// What the libFuzzer targets of fuzz/ share: reporting a finding, splitting one input into several files, and a
// scratch folder for readers that only take paths. Built into the fuzzers and into their replay tests alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace multibox::fuzz {

using Bytes = std::span<const uint8_t>;

// A broken invariant (a verdict the reference would not give, a backend disagreeing with the reference): prints
// "FUZZ FINDING: what" and aborts, so libFuzzer saves the input and the replay test fails.
[[noreturn]] void finding(std::string_view what);

// Inputs that stand for several files are the files' bytes joined by this marker, in a fixed order of names: the
// fuzzer mutates all of them at once and the dictionaries hold the marker. An empty part is an absent file.
inline constexpr std::string_view kFileSeparator = "\n@@multibox-file@@\n";
std::vector<Bytes> split_files(Bytes input);
std::string join_files(const std::vector<std::string>& parts);

// A folder of this process's own under the temporary directory (/dev/shm when there is one: no disk writes per
// input), emptied on first use and removed at exit.
const std::filesystem::path& scratch_folder();
// Writes `parts[i]` to `dir / names[i]`, removing that file when the part is empty or missing.
void write_files(const std::filesystem::path& dir, std::span<const char* const> names, const std::vector<Bytes>& parts);

}  // namespace multibox::fuzz
