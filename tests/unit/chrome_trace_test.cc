// The Chrome trace writer: event fields, tracks as named rows, file output.
#include "io/chrome_trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "anvil/error.h"

namespace anvil::io {
namespace {

TEST(ChromeTrace, CompleteEventsOnNamedTracks) {
  ChromeTrace trace;
  trace.add("GPU: compute", "enqueue 0", 10.0, 1250.5, {{"batch", 128}});
  trace.add("GPU: H2D", "upload 0", 0.0, 10.0);
  trace.add("GPU: compute", "enqueue 1", 2000.0, -1.0);  // clamped: no negative durations
  EXPECT_EQ(trace.size(), 3u);
  const nlohmann::json doc = trace.to_json();
  EXPECT_EQ(doc["displayTimeUnit"], "ms");
  std::vector<nlohmann::json> complete, names;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") complete.push_back(e);
    if (e["ph"] == "M" && e["name"] == "thread_name") names.push_back(e);
  }
  ASSERT_EQ(complete.size(), 3u);
  EXPECT_EQ(complete[0]["name"], "enqueue 0");
  EXPECT_EQ(complete[0]["ts"], 10.0);
  EXPECT_EQ(complete[0]["dur"], 1250.5);
  EXPECT_EQ(complete[0]["args"]["batch"], 128);
  EXPECT_EQ(complete[2]["dur"], 0.0);
  // Two tracks: the first created is tid 1, the events on it share it.
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0]["args"]["name"], "GPU: compute");
  EXPECT_EQ(names[1]["args"]["name"], "GPU: H2D");
  EXPECT_EQ(complete[0]["tid"], names[0]["tid"]);
  EXPECT_EQ(complete[2]["tid"], names[0]["tid"]);
  EXPECT_EQ(complete[1]["tid"], names[1]["tid"]);
}

TEST(ChromeTrace, WritesAFileThatParsesBack) {
  ChromeTrace trace;
  trace.add("host", "name with \"quotes\"", 1.0, 2.0);
  const auto path = std::filesystem::temp_directory_path() /
                    ("anvil_trace_" + std::to_string(::getpid()) + ".json");
  trace.write(path);
  std::ifstream in(path);
  const nlohmann::json back = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  EXPECT_EQ(back, trace.to_json());
}

TEST(ChromeTrace, AnUnwritablePathIsAnIoError) {
  ChromeTrace trace;
  try {
    trace.write("/nonexistent-dir/trace.json");
    FAIL() << "wrote to a missing folder";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/trace.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace anvil::io
