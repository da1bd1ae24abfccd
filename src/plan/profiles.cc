#include "plan/profiles.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "anvil/error.h"

namespace anvil::plan {

std::vector<BatchRange> batch_ranges(const Plan& plan, std::string_view label) {
  if (plan.profiles.empty())
    fail(ErrorKind::kInvalidArgument, label, ": the plan has no optimization profile");
  std::vector<BatchRange> ranges;
  for (std::size_t i = 0; i < plan.profiles.size(); ++i) {
    const Profile& profile = plan.profiles[i];
    if (profile.inputs.empty())
      fail(ErrorKind::kInvalidArgument, label, ": optimization profile ", i, " has no inputs");
    std::optional<BatchRange> range;
    for (const auto& [name, dim] : profile.inputs) {
      if (dim.min.empty() || dim.opt.empty() || dim.max.empty())
        fail(ErrorKind::kInvalidArgument, label, ": profile ", i, " input '", name,
             "' has an empty shape");
      const BatchRange r{dim.min[0], dim.opt[0], dim.max[0]};
      if (r.min < 1 || r.min > r.opt || r.opt > r.max)
        fail(ErrorKind::kInvalidArgument, label, ": profile ", i, " input '", name,
             "' has the batch range min ", r.min, ", opt ", r.opt, ", max ", r.max,
             " (need 1 <= min <= opt <= max)");
      if (range && (range->min != r.min || range->opt != r.opt || range->max != r.max))
        fail(ErrorKind::kInvalidArgument, label, ": profile ", i,
             " gives its inputs different batch ranges");
      range = r;
    }
    ranges.push_back(*range);
  }
  return ranges;
}

int best_profile(const std::vector<BatchRange>& ranges, std::int64_t batch) {
  int best = -1;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (!ranges[i].contains(batch)) continue;
    if (best < 0 || std::llabs(ranges[i].opt - batch) <
                        std::llabs(ranges[static_cast<std::size_t>(best)].opt - batch))
      best = static_cast<int>(i);
  }
  return best;
}

std::string describe(const std::vector<BatchRange>& ranges) {
  std::string out;
  for (std::size_t i = 0; i < ranges.size(); ++i)
    out += cat(i ? "; " : "", "profile ", i, ": batch ", ranges[i].min, "..", ranges[i].max,
               " (opt ", ranges[i].opt, ")");
  return out;
}

bool holds(const Profile& profile, std::string_view input, std::span<const std::int64_t> dims) {
  const auto it = profile.inputs.find(std::string(input));
  if (it == profile.inputs.end() || it->second.min.size() != dims.size()) return false;
  for (std::size_t d = 0; d < dims.size(); ++d)
    if (dims[d] < it->second.min[d] || dims[d] > it->second.max[d]) return false;
  return true;
}

int best_profile(const Plan& plan, std::string_view input, std::span<const std::int64_t> dims) {
  int best = -1;
  // (batch distance, distance of the other dims): the batch decides first,
  // as best_profile(ranges, batch) does for batch-only plans.
  std::pair<std::int64_t, std::int64_t> best_distance;
  for (std::size_t i = 0; i < plan.profiles.size(); ++i) {
    if (!holds(plan.profiles[i], input, dims)) continue;
    const std::vector<std::int64_t>& opt = plan.profiles[i].inputs.at(std::string(input)).opt;
    std::pair<std::int64_t, std::int64_t> distance{std::llabs(opt[0] - dims[0]), 0};
    for (std::size_t d = 1; d < dims.size(); ++d)
      distance.second += std::llabs(opt[d] - dims[d]);
    if (best < 0 || distance < best_distance) {
      best = static_cast<int>(i);
      best_distance = distance;
    }
  }
  return best;
}

std::string describe_shapes(const Plan& plan, std::string_view input) {
  std::string out;
  for (std::size_t i = 0; i < plan.profiles.size(); ++i) {
    const auto it = plan.profiles[i].inputs.find(std::string(input));
    if (it == plan.profiles[i].inputs.end()) continue;
    const ProfileDim& r = it->second;
    std::string range, opt;
    for (std::size_t d = 0; d < r.min.size(); ++d) {
      range += (d ? "x" : "") + (r.min[d] == r.max[d] ? std::to_string(r.min[d])
                                                      : cat("[", r.min[d], "..", r.max[d], "]"));
      opt += (d ? "x" : "") + std::to_string(r.opt[d]);
    }
    out += cat(out.empty() ? "" : "; ", "profile ", i, ": ", range, " (opt ", opt, ")");
  }
  return out;
}

namespace {

// The tactic entry of `profile` in a layer's parsed tactic: the top object
// for profile 0 of a one-profile plan, else the "profiles" list's entry.
nlohmann::json* tactic_entry(nlohmann::json& tactic, int profile) {
  if (!tactic.is_object() || profile < 0) return nullptr;
  if (auto list = tactic.find("profiles"); list != tactic.end() && list->is_array())
    return static_cast<std::size_t>(profile) < list->size()
               ? &(*list)[static_cast<std::size_t>(profile)]
               : nullptr;
  return profile == 0 ? &tactic : nullptr;
}

nlohmann::json parse_tactic(const LayerDesc& layer) {
  return nlohmann::json::parse(layer.tactic, nullptr, /*allow_exceptions=*/false);
}

std::optional<std::string> string_field(const nlohmann::json* object, const char* key) {
  if (!object || !object->is_object()) return std::nullopt;
  auto it = object->find(key);
  if (it == object->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

std::optional<std::string> tactic_identity(const LayerDesc& layer, int profile) {
  nlohmann::json tactic = parse_tactic(layer);
  return string_field(tactic_entry(tactic, profile), "identity");
}

void set_tactic(LayerDesc& layer, int profile, const std::string& identity, float ms) {
  auto tactic = parse_tactic(layer);
  if (!tactic.is_object() || profile == 0) tactic = nlohmann::json::object();
  const nlohmann::json entry = {{"identity", identity}, {"ms", ms}};
  if (profile == 0) {
    tactic = entry;
    layer.tactic = tactic.dump();
    return;
  }
  nlohmann::json& list = tactic["profiles"];
  if (!list.is_array()) {
    nlohmann::json first = tactic;  // profile 0's entry, whatever it holds
    first.erase("profiles");
    list = nlohmann::json::array({first});
  }
  if (static_cast<std::size_t>(profile) != list.size())
    fail(ErrorKind::kInvalidArgument, "layer '", layer.name, "': tactic for profile ", profile,
         " set before profile ", list.size());
  list.push_back(entry);
  layer.tactic = tactic.dump();
}

std::optional<CompiledTactic> tactic_compiled(const LayerDesc& layer, int profile) {
  nlohmann::json tactic = parse_tactic(layer);
  const nlohmann::json* entry = tactic_entry(tactic, profile);
  if (!entry || !entry->contains("compiled")) return std::nullopt;
  const nlohmann::json& compiled = (*entry)["compiled"];
  auto shape = string_field(&compiled, "shape");
  auto cudnn = string_field(&compiled, "cudnn");
  if (!shape || !cudnn) return std::nullopt;
  return CompiledTactic{std::move(*shape), std::move(*cudnn)};
}

void set_tactic_compiled(LayerDesc& layer, int profile, const CompiledTactic& compiled) {
  nlohmann::json tactic = parse_tactic(layer);
  nlohmann::json* entry = tactic_entry(tactic, profile);
  if (!string_field(entry, "identity"))
    fail(ErrorKind::kInvalidArgument, "layer '", layer.name, "' has no tactic for profile ",
         profile, " to attach its compiled plan to");
  const nlohmann::json value = {{"shape", compiled.shape}, {"cudnn", compiled.cudnn}};
  (*entry)["compiled"] = value;
  if (profile == 0 && entry != &tactic) tactic["compiled"] = value;  // the top mirrors entry 0
  layer.tactic = tactic.dump();
}

}  // namespace anvil::plan
