#include "plan/streams.h"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace anvil::plan {
namespace {

using LayerSet = std::vector<bool>;  // indexed by layer

// The layer writing each tensor, -1 for engine inputs (and unused tensors).
std::vector<int> producers(const Plan& plan) {
  std::vector<int> out(plan.tensors.size(), -1);
  for (std::size_t i = 0; i < plan.layers.size(); ++i)
    for (const int id : plan.layers[i].outputs)
      out[static_cast<std::size_t>(id)] = static_cast<int>(i);
  return out;
}

// The distinct layers producing `layer`'s inputs.
std::vector<int> input_producers(const LayerDesc& layer, const std::vector<int>& producer) {
  std::vector<int> out;
  for (const int id : layer.inputs) {
    const int p = producer[static_cast<std::size_t>(id)];
    if (p >= 0 && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

bool reads_engine_input(const Plan& plan, const LayerDesc& layer) {
  for (const IoBinding& io : plan.io)
    if (io.is_input &&
        std::find(layer.inputs.begin(), layer.inputs.end(), io.tensor_id) != layer.inputs.end())
      return true;
  return false;
}

// before[i][j]: layer j is ordered before layer i. `direct(i)` lists the
// layers i waits for directly; the plan's order is topological, so one pass
// in order closes the relation.
template <typename Direct>
std::vector<LayerSet> closure(std::size_t n, Direct direct) {
  std::vector<LayerSet> before(n, LayerSet(n, false));
  for (std::size_t i = 0; i < n; ++i)
    for (const int d : direct(i)) {
      const auto du = static_cast<std::size_t>(d);
      before[i][du] = true;
      for (std::size_t k = 0; k < du; ++k)
        if (before[du][k]) before[i][k] = true;
    }
  return before;
}

}  // namespace

StreamSchedule schedule_streams(const Plan& plan) {
  const std::vector<int> producer = producers(plan);
  StreamSchedule s;
  s.layers.resize(plan.layers.size());
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    LayerSchedule& l = s.layers[i];
    l.stream = plan.layers[i].stream;
    s.aux_streams = std::max(s.aux_streams, l.stream);
    for (const int p : input_producers(plan.layers[i], producer)) {
      if (plan.layers[static_cast<std::size_t>(p)].stream == l.stream) continue;
      l.waits.push_back(p);
      s.layers[static_cast<std::size_t>(p)].signals = true;
    }
  }
  return s;
}

void assign_streams(Plan& plan, int aux_streams) {
  const std::vector<int> producer = producers(plan);
  const std::size_t n = plan.layers.size();
  // Data dependencies only: what a layer must wait for on any stream.
  const std::vector<LayerSet> depends =
      closure(n, [&](std::size_t i) { return input_producers(plan.layers[i], producer); });
  int next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    LayerDesc& layer = plan.layers[i];
    layer.stream = 0;
    if (aux_streams < 1 || i == 0) continue;
    const std::vector<int> inputs = input_producers(layer, producer);
    const int previous = plan.layers[i - 1].stream;
    if (!depends[i][i - 1] && !reads_engine_input(plan, layer)) {
      layer.stream = 1 + next++ % aux_streams;
    } else if (previous != 0 && !inputs.empty() &&
               std::all_of(inputs.begin(), inputs.end(), [&](int p) {
                 return plan.layers[static_cast<std::size_t>(p)].stream == previous;
               })) {
      layer.stream = previous;  // the next link of a chain already on that stream
    }
  }
}

std::vector<LayerWindow> concurrency_windows(const Plan& plan) {
  const std::vector<int> producer = producers(plan);
  const std::size_t n = plan.layers.size();
  // Ordered by the launch protocol: the previous layer on the same stream,
  // and the producers of the inputs (through events when on another stream).
  const std::vector<LayerSet> before = closure(n, [&](std::size_t i) {
    std::vector<int> direct = input_producers(plan.layers[i], producer);
    for (std::size_t j = i; j-- > 0;)
      if (plan.layers[j].stream == plan.layers[i].stream) {
        direct.push_back(static_cast<int>(j));
        break;
      }
    return direct;
  });
  std::vector<LayerWindow> windows(n);
  for (std::size_t i = 0; i < n; ++i) {
    LayerWindow& w = windows[i];
    w.first = w.last = static_cast<int>(i);
    for (std::size_t k = 0; k < i; ++k)
      if (!before[i][k]) {
        w.first = static_cast<int>(k);
        break;
      }
    for (std::size_t k = n; k-- > i + 1;)
      if (!before[k][i]) {
        w.last = static_cast<int>(k);
        break;
      }
  }
  return windows;
}

}  // namespace anvil::plan
