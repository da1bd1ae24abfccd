// classify_files over the CPU executor: one outcome per file in file order
// with several workers, a fixed-batch model's padded last batch, per-file
// load errors, and the folder listing.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>

#include "pass_test_util.h"
#include "pipeline/cpu_executor.h"
#include "pipeline/image_batches.h"

namespace anvil::pipeline {
namespace {

namespace fs = std::filesystem;
using passes::testing::GraphBuilder;

constexpr std::int64_t kClasses = 16;

// [batch, 16] -> Relu -> [batch, 16]: an image's top class is its hot element.
std::shared_ptr<const ir::Graph> one_hot_model(ir::Dim batch) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({batch, ir::Dim::known(kClasses)}));
  b.output(b.node("Relu", {x}));
  return std::make_shared<const ir::Graph>(b.finish());
}

// Files are named by number; "bad" ones fail to load.
std::vector<float> one_hot_loader(const fs::path& file) {
  const std::string name = file.filename().string();
  if (name.starts_with("bad")) fail(ErrorKind::kIo, name, ": corrupt PNG (test)");
  std::vector<float> v(kClasses, 0.0f);
  v[static_cast<std::size_t>(std::stoi(name) % kClasses)] = 5.0f;
  return v;
}

std::vector<fs::path> names(std::initializer_list<const char*> list) {
  return std::vector<fs::path>(list.begin(), list.end());
}

std::vector<ImageOutcome> run_all(Pipeline& pipeline, const std::vector<fs::path>& files,
                                  std::int64_t batch, ClassifyCounts& counts) {
  std::vector<ImageOutcome> outcomes;
  ClassifyFilesOptions options;
  options.batch = batch;
  counts = classify_files(pipeline, files, one_hot_loader, options,
                          [&](const ImageOutcome& o) { outcomes.push_back(o); });
  return outcomes;
}

TEST(ClassifyFiles, OutcomesInFileOrderWithManyWorkers) {
  PipelineOptions options;
  options.workers = 3;
  options.queue_depth = 2;
  options.top_k = 2;
  Pipeline pipeline(cpu_executor_factory(one_hot_model(ir::Dim::named("N"))), options);
  std::vector<fs::path> files;
  for (int i = 0; i < 37; ++i)
    files.push_back(std::to_string(i) + ".png");
  ClassifyCounts counts;
  const auto outcomes = run_all(pipeline, files, 3, counts);
  ASSERT_EQ(outcomes.size(), files.size());
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].index, i);
    EXPECT_EQ(outcomes[i].file, files[i]);
    EXPECT_TRUE(outcomes[i].error.empty()) << outcomes[i].error;
    ASSERT_EQ(outcomes[i].top_k.size(), 2u);
    EXPECT_EQ(outcomes[i].top_k[0].class_index, static_cast<std::int64_t>(i) % kClasses);
  }
  EXPECT_EQ(counts.succeeded, 37u);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.batches, 13u);  // 12 of 3 and one of 1
}

TEST(ClassifyFiles, LoadErrorsKeepTheirPlaceAndTheRestRun) {
  PipelineOptions options;
  options.top_k = 1;
  Pipeline pipeline(cpu_executor_factory(one_hot_model(ir::Dim::named("N"))), options);
  const auto files = names({"1.png", "bad_a.jpg", "2.png", "3.png", "bad_b.png", "4.png"});
  ClassifyCounts counts;
  const auto outcomes = run_all(pipeline, files, 2, counts);
  ASSERT_EQ(outcomes.size(), 6u);
  EXPECT_NE(outcomes[1].error.find("bad_a.jpg: corrupt PNG"), std::string::npos);
  EXPECT_NE(outcomes[4].error.find("bad_b.png"), std::string::npos);
  EXPECT_TRUE(outcomes[1].top_k.empty());
  const int expected[] = {1, -1, 2, 3, -1, 4};
  for (std::size_t i = 0; i < 6; ++i) {
    if (expected[i] < 0) continue;
    EXPECT_TRUE(outcomes[i].error.empty()) << outcomes[i].error;
    ASSERT_EQ(outcomes[i].top_k.size(), 1u);
    EXPECT_EQ(outcomes[i].top_k[0].class_index, expected[i]);
  }
  EXPECT_EQ(counts.succeeded, 4u);
  EXPECT_EQ(counts.failed, 2u);
  EXPECT_EQ(counts.batches, 2u);  // failed files leave no holes in the batches
}

TEST(ClassifyFiles, FixedBatchModelPadsTheLastBatch) {
  PipelineOptions options;
  options.top_k = 1;
  options.workers = 1;
  Pipeline pipeline(cpu_executor_factory(one_hot_model(ir::Dim::known(4))), options);
  EXPECT_EQ(choose_batch_size(8, pipeline.model_info()), 4);
  EXPECT_EQ(choose_batch_size(1, pipeline.model_info()), 4);
  const auto files = names({"5.png", "6.png", "7.png", "8.png", "9.png", "bad.png", "10.png"});
  ClassifyCounts counts;
  const auto outcomes = run_all(pipeline, files, 8, counts);
  ASSERT_EQ(outcomes.size(), 7u);  // padding adds no outcomes
  EXPECT_EQ(outcomes[4].top_k.at(0).class_index, 9);
  EXPECT_FALSE(outcomes[5].error.empty());
  EXPECT_EQ(outcomes[6].top_k.at(0).class_index, 10);
  EXPECT_EQ(counts.batches, 2u);
  EXPECT_EQ(counts.succeeded, 6u);
}

TEST(ClassifyFiles, WrongSizedImageFailsOnlyThatFile) {
  PipelineOptions options;
  options.top_k = 1;
  Pipeline pipeline(cpu_executor_factory(one_hot_model(ir::Dim::named("N"))), options);
  const auto files = names({"1.png", "2.png"});
  std::vector<ImageOutcome> outcomes;
  const ClassifyCounts counts = classify_files(
      pipeline, files,
      [](const fs::path& f) { return f == "1.png" ? std::vector<float>(3) : one_hot_loader(f); },
      ClassifyFilesOptions{}, [&](const ImageOutcome& o) { outcomes.push_back(o); });
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_NE(outcomes[0].error.find("1.png"), std::string::npos);
  EXPECT_EQ(outcomes[1].top_k.at(0).class_index, 2);
  EXPECT_EQ(counts.failed, 1u);
}

TEST(ChooseBatchSize, ClampsToTheModelsRange) {
  ExecutorModelInfo dynamic;
  dynamic.min_batch = 1;
  dynamic.max_batch = 16;
  EXPECT_EQ(choose_batch_size(8, dynamic), 8);
  EXPECT_EQ(choose_batch_size(64, dynamic), 16);
  EXPECT_THROW(choose_batch_size(0, dynamic), Error);
}

TEST(ListImageFiles, SortsByNameAndKeepsJpegAndPngOnly) {
  const fs::path dir = fs::path(::testing::TempDir()) / "anvil_classify_list";
  fs::remove_all(dir);
  fs::create_directories(dir / "sub.png");
  for (const char* name : {"b.png", "a.JPG", "c.jpeg", "notes.txt", "d.PNG", "e.bmp"})
    std::ofstream(dir / name) << "x";
  std::vector<std::string> listed;
  for (const fs::path& p : list_image_files(dir))
    listed.push_back(p.filename().string());
  EXPECT_EQ(listed, (std::vector<std::string>{"a.JPG", "b.png", "c.jpeg", "d.PNG"}));
  EXPECT_THROW(list_image_files(dir / "missing"), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anvil::pipeline
