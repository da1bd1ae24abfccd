// anvil: build, run and inspect ONNX convolutional networks.
#include <cstdio>

#include "anvil/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Anvil: an inference compiler and runtime for ONNX convolutional networks"};
  app.require_subcommand(1);
  anvil::cli::add_bench_command(app);
  anvil::cli::add_build_command(app);
  anvil::cli::add_calibrate_command(app);
  anvil::cli::add_classify_command(app);
  anvil::cli::add_eval_command(app);
  anvil::cli::add_inspect_command(app);
  anvil::cli::add_run_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const anvil::Error& e) {
    std::fprintf(stderr, "anvil: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anvil: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
