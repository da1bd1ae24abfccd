#include "runtime/layer_runner.h"

#include <map>
#include <string>

#include "anvil/error.h"

namespace anvil::runtime {

namespace {

// Filled by static registrars before main(); read-only afterwards.
std::map<std::string, RunnerFactory, std::less<>>& table() {
  static std::map<std::string, RunnerFactory, std::less<>> factories;
  return factories;
}

}  // namespace

detail::RunnerRegistrar::RunnerRegistrar(std::string_view kind, RunnerFactory factory) {
  ANVIL_CHECK(table().emplace(std::string(kind), factory).second);
}

RunnerFactory find_runner(std::string_view kind) {
  auto it = table().find(kind);
  return it == table().end() ? nullptr : it->second;
}

}  // namespace anvil::runtime
