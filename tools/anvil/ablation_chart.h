// A small PNG bar chart of the ablation table's ms column: one horizontal bar
// per row in table order (unavailable rows leave a gap), the baseline's
// length the full width.
#pragma once

#include <filesystem>
#include <string>

#include "ablation_report.h"

namespace anvil::cli {

// The PNG file's bytes (RGB, written by libpng).
std::string ablation_chart_png(const AblationReport& report);
// kIo naming the file when it cannot be written.
void write_ablation_chart(const std::filesystem::path& path, const AblationReport& report);

}  // namespace anvil::cli
