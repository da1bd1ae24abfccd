#include "plan/plan.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "anvil/error.h"
#include "plan/plan_container.h"
#include "plan/plan_metadata.h"

namespace anvil::plan {

std::vector<std::byte> serialize_plan(const Plan& plan) {
  // Refusing here what deserialize_plan would refuse keeps bad plans off disk.
  validate_plan(plan, "plan to write");
  return pack_plan_file(to_metadata(plan), plan.weights);
}

Plan deserialize_plan(std::span<const std::byte> bytes, std::string_view label) {
  const PlanSections sections = unpack_plan_file(bytes, label);
  Plan plan = from_metadata(sections.metadata, label);
  plan.weights.assign(sections.weights.begin(), sections.weights.end());
  validate_plan(plan, label);
  return plan;
}

Plan read_plan_file(const std::filesystem::path& path) {
  const std::string label = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kIo, label, ": cannot open plan file: ", std::strerror(errno));
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) fail(ErrorKind::kIo, label, ": cannot read plan file: ", error.message());
  std::vector<std::byte> bytes(size);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    fail(ErrorKind::kIo, label, ": cannot read plan file (read ", in.gcount(), " of ", size,
         " bytes)");
  return deserialize_plan(bytes, label);
}

void write_plan_file(const std::filesystem::path& path, const Plan& plan) {
  const std::vector<std::byte> bytes = serialize_plan(plan);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    fail(ErrorKind::kIo, path.string(), ": cannot create plan file: ", std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail(ErrorKind::kIo, path.string(), ": cannot write plan file (disk full?)");
}

}  // namespace anvil::plan
