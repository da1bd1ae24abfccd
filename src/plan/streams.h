// Auxiliary streams: layers that do not depend on each other (a ResNet
// block's downsample shortcut beside its first conv) run on separate CUDA
// streams of one context, joined with events.
//
// A plan records the stream of each layer (LayerDesc::stream: 0 is the
// caller's stream, 1..N the context's auxiliary streams). Everything else is
// derived here from that assignment and the layers' tensors:
//  - the schedule: which events a layer waits for before it starts (the
//    layers on other streams that produce its inputs) and whether it records
//    one after it;
//  - the concurrency windows the memory planner needs: two layers that may run
//    at the same time must not have their tensors share arena memory.
//
// The launch protocol (runtime/execution_context.cc) is: record a fork event
// on stream 0; each auxiliary stream waits for it; every layer waits for its
// `waits` events on its own stream, runs, and records its event if
// `signals`; at the end stream 0 waits for each auxiliary stream. So a
// layer's inputs are ready before it runs, and the next enqueue starts after
// all of this one.
#pragma once

#include <vector>

#include "plan/plan.h"

namespace anvil::plan {

// The most auxiliary streams a plan may use.
inline constexpr int kMaxAuxStreams = 8;

struct LayerSchedule {
  int stream = 0;
  std::vector<int> waits;  // layers on other streams whose events it waits for
  bool signals = false;    // a layer on another stream waits for this one
};

struct StreamSchedule {
  int aux_streams = 0;  // the highest stream any layer uses
  std::vector<LayerSchedule> layers;
};

StreamSchedule schedule_streams(const Plan& plan);

// Puts each layer that depends on neither the layer before it nor any engine
// input on an auxiliary stream (1..aux_streams in turn), and a layer whose
// producers all ran on one auxiliary stream right before it on that stream;
// the rest on stream 0. aux_streams = 0 puts every layer on stream 0.
void assign_streams(Plan& plan, int aux_streams);

// For each layer, the range [first, last] of layer indices it may run
// concurrently with (itself included): first is the earliest layer not
// ordered before it, last the latest not ordered after it. A layer on
// stream 0 of a one-stream plan gets [i, i].
struct LayerWindow {
  int first = 0;
  int last = 0;
};
std::vector<LayerWindow> concurrency_windows(const Plan& plan);

}  // namespace anvil::plan
