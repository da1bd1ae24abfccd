// anvil inspect: what a model is made of (IO, ops, parameters, GFLOPs).
#include <cstdio>
#include <map>

#include "commands.h"
#include "inspect_plan.h"
#include "ir/dump.h"
#include "model_loading.h"
#include "onnx/importer.h"
#include "ops/cost.h"
#include "ops/op.h"
#include "run_plan.h"

namespace anvil::cli {

namespace {

struct InspectOptions {
  ModelOptions model;
  std::int64_t batch = 1;
  bool list_ops = false;
  bool dump = false;
};

void print_values(const char* title, const std::vector<ir::Value*>& values) {
  std::printf("%s:\n", title);
  for (const ir::Value* v : values)
    std::printf("  %-24s %-8s %s\n", v->name.c_str(), std::string(to_string(v->dtype)).c_str(),
                to_string(v->shape).c_str());
}

void print_supported_ops() {
  std::printf("Supported ONNX ops (default domain, opsets %d to %d):\n", onnx::kMinOpset,
              onnx::kMaxOpset);
  for (const auto* entry : ops::registered_ops())
    std::printf("  %s\n", std::string(entry->op_type).c_str());
}

void inspect_model(const InspectOptions& opt) {
  const ir::Graph graph = load_model(opt.model);
  std::printf("Model %s (opset %d)\n", opt.model.path.c_str(), graph.opset);
  if (opt.dump) std::printf("%s", ir::dump(graph).c_str());
  print_values("Inputs", graph.inputs);
  print_values("Outputs", graph.outputs);

  std::map<std::string, int> histogram;
  for (const auto& node : graph.nodes())
    ++histogram[node->op_type];
  std::printf("Ops (%zu nodes):\n", graph.nodes().size());
  for (const auto& [op, count] : histogram)
    std::printf("  %-24s %d\n", op.c_str(), count);

  std::int64_t parameters = 0, bytes = 0;
  for (const ir::Value* v : graph.values())
    if (v->is_constant() && (v->dtype == DType::kFloat32 || v->dtype == DType::kFloat16)) {
      parameters += v->constant->element_count();
      bytes += static_cast<std::int64_t>(v->constant->byte_size());
    }
  std::printf("Parameters: %lld (%.1f MB of weights, BatchNorm statistics included)\n",
              static_cast<long long>(parameters), static_cast<double>(bytes) / 1e6);

  std::map<std::string, std::int64_t> symbols;
  for (const ir::Value* in : graph.inputs)
    for (const ir::Dim& d : in->shape.dims())
      if (!d.is_known()) symbols[d.symbol] = opt.batch;
  const ops::GraphCost cost = ops::estimate_cost(graph, symbols);
  std::printf("Compute at batch %lld: %.3f GFLOPs (2 x %lld multiply-accumulates)\n",
              static_cast<long long>(opt.batch), 2.0 * static_cast<double>(cost.macs) / 1e9,
              static_cast<long long>(cost.macs));
  for (const auto& [op, macs] : cost.macs_by_op)
    std::printf("  %-24s %.3f GFLOPs\n", op.c_str(), 2.0 * static_cast<double>(macs) / 1e9);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a model's inputs, outputs, ops, size and cost");
  cmd->add_option("model", opt->model.path, "ONNX model or plan file");
  add_model_options(*cmd, opt->model);
  cmd->add_option("--batch", opt->batch,
                  "Batch size for the GFLOPs figure (binds every dynamic dimension)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--dump", opt->dump, "Print the imported graph, one line per node");
  cmd->add_flag("--ops", opt->list_ops, "List the ONNX ops Anvil supports");
  cmd->callback([opt] {
    if (opt->list_ops) print_supported_ops();
    if (!opt->model.path.empty() && is_plan_file(opt->model.path))
      inspect_plan(opt->model.path);
    else if (!opt->model.path.empty())
      inspect_model(*opt);
    else if (!opt->list_ops)
      throw CLI::RequiredError("model");
  });
}

}  // namespace anvil::cli
