// Shared bits of the meter tests: where the real sample logs are, temp dirs,
// reading and writing files.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dormant::testing {

/// ../shared/samples beside the source tree (DORMANT_SAMPLES overrides).
inline std::string SamplesDir() {
  if (const char* env = std::getenv("DORMANT_SAMPLES")) return env;
  return std::string(DORMANT_SOURCE_DIR) + "/../shared/samples";
}

inline std::string CodexSample1() {
  return SamplesDir() +
         "/codex-0.169.0/sessions/2026/11/24/"
         "rollout-2026-11-24T19-06-10-01a20ef3-85e2-7023-ae72-5223d70ae4cf.jsonl";
}
inline std::string CodexSample2() {
  return SamplesDir() +
         "/codex-0.169.0/sessions/2026/11/24/"
         "rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
}
inline std::string ClaudeSession1() { return SamplesDir() + "/claude-2.1.328/session-1.jsonl"; }
inline std::string ClaudeSession2() { return SamplesDir() + "/claude-2.1.328/session-2.jsonl"; }
inline std::string ClaudeRealLines() { return SamplesDir() + "/claude/real-lines-2.1.126.jsonl"; }

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

inline void WriteFile(const std::string& path, const std::string& data, bool append = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out << data;
}

/// A fresh directory removed (recursively) when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "dormant-meter-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* p = mkdtemp(buf.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

/// Lays the sample logs out as a user's home would hold them:
///   codex/sessions/2026/11/24/rollout-*.jsonl, claude/projects/{a,b}/*.jsonl.
inline void LayOutSamples(const TempDir& dir) {
  for (const std::string& f : {CodexSample1(), CodexSample2()}) {
    WriteFile(dir / ("codex/sessions/2026/11/24/" + std::filesystem::path(f).filename().string()),
              ReadAll(f));
  }
  WriteFile(dir / "claude/projects/-home-user-project/session-1.jsonl", ReadAll(ClaudeSession1()));
  WriteFile(dir / "claude/projects/-home-user-project/session-2.jsonl", ReadAll(ClaudeSession2()));
  WriteFile(dir / "claude/projects/-tmp-eval/real-lines.jsonl", ReadAll(ClaudeRealLines()));
}

}  // namespace dormant::testing
